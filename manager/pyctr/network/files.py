"""A container's /etc/hostname, /etc/hosts and /etc/resolv.conf, kept in its directory and
bind-mounted. Rewrites (a peer joined or left a network) truncate and write the same file: the
bind mount in the container follows only the inode."""
import os

RESOLV_FALLBACK = ["8.8.8.8", "8.8.4.4"]   # Docker's, when no usable nameserver is left
HOSTS_BASE = ("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\n"
              "ff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n")


def _write(path, text):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o644)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def _read_host(path):
    try:
        with open(path) as f:
            return f.read(1 << 20)
    except OSError:
        return ""


def hosts_text(rec, peers=()):
    """Docker's hosts file: localhost lines, --add-host, the container's own addresses with its
    hostname, then (pyctr's names on user-defined networks) each peer's address, name and aliases."""
    host, cfg = rec["HostConfig"], rec["Config"]
    mode = host.get("NetworkMode") or "none"
    if mode == "host":
        return _read_host("/etc/hosts")
    lines = [HOSTS_BASE]
    for extra in host.get("ExtraHosts") or []:
        name, _, ip = extra.partition(":")
        lines.append(f"{ip}\t{name}\n")
    names = cfg["Hostname"] + (f".{cfg['Domainname']}" if cfg.get("Domainname") else "")
    own = [n.get("IPAddress") for n in ((rec.get("NetworkSettings") or {}).get("Networks") or {}).values()
           if n.get("IPAddress")]
    for ip in own or (["127.0.0.1"] if mode == "none" or mode.startswith("container:") else []):
        lines.append(f"{ip}\t{names}\n")
    seen = set()
    for p in peers:
        key = (p["IPAddress"], tuple(p["Names"]))
        if key not in seen:
            seen.add(key)
            lines.append(f"{p['IPAddress']}\t{' '.join(p['Names'])}\n")
    return "".join(lines)


def resolv_text(rec, host_resolv=None):
    """The host's resolv.conf; in a private netns its loopback servers dropped (unreachable
    there), 8.8.8.8/8.8.4.4 if none is left; --dns, --dns-search, --dns-option replace their part."""
    host = rec["HostConfig"]
    text = host_resolv if host_resolv is not None else \
        _read_host("/run/systemd/resolve/resolv.conf") if "127.0.0.53" in _read_host("/etc/resolv.conf") \
        else _read_host("/etc/resolv.conf")
    servers, search, options = [], [], []
    for ln in text.splitlines():
        f = ln.split()
        if f[:1] == ["nameserver"] and len(f) > 1:
            servers.append(f[1])
        elif f[:1] in (["search"], ["domain"]):
            search = f[1:]
        elif f[:1] == ["options"]:
            options += f[1:]
    if host.get("NetworkMode") != "host":
        servers = [s for s in servers if not s.startswith("127.") and s != "::1"]
        servers = [s for s in servers if ":" not in s] or ([] if host.get("Dns") else RESOLV_FALLBACK)
    if host.get("Dns"):
        servers = list(host["Dns"])
    if host.get("DnsSearch"):
        search = [s for s in host["DnsSearch"] if s != "."]
    if host.get("DnsOptions"):
        options = list(host["DnsOptions"])
    out = [f"nameserver {s}\n" for s in servers]
    if search:
        out.append("search " + " ".join(search) + "\n")
    if options:
        out.append("options " + " ".join(options) + "\n")
    return "".join(out)


def write_all(ctr_dir, rec, peers=()):
    """Write the three files; returns {container path: host path} for the bind mounts."""
    paths = {"/etc/hostname": os.path.join(ctr_dir, "hostname"), "/etc/hosts": os.path.join(ctr_dir, "hosts"),
             "/etc/resolv.conf": os.path.join(ctr_dir, "resolv.conf")}
    hostname = os.uname().nodename if rec["HostConfig"].get("NetworkMode") == "host" else rec["Config"]["Hostname"]
    _write(paths["/etc/hostname"], hostname + "\n")
    _write(paths["/etc/hosts"], hosts_text(rec, peers))
    _write(paths["/etc/resolv.conf"], resolv_text(rec))
    return paths


def rewrite_hosts(ctr_dir, rec, peers):
    _write(os.path.join(ctr_dir, "hosts"), hosts_text(rec, peers))
