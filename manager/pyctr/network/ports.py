"""Published ports: Docker's -p syntax (`go-connections/nat ParsePortSpec`), -P, and the host
ports pyctr binds and holds while the container runs (as podman's rootful port reservation), so a
port in use is an error at start and never a second, silent DNAT."""
import errno
import ipaddress
import socket
import time

from pyctr.network.errors import NetworkError

PROTOS = ("tcp", "udp", "sctp")


def _port_range(text, spec):
    lo, dash, hi = text.partition("-")
    try:
        a, b = int(lo), int(hi) if dash else int(lo)
        if not (lo.isdigit() and (not dash or hi.isdigit())):
            raise ValueError
    except ValueError:
        raise NetworkError(f"invalid port spec {spec!r}: {text!r} is not a port or a range of ports") from None
    if not (0 < a <= 65535 and 0 < b <= 65535) or b < a:
        raise NetworkError(f"invalid port spec {spec!r}: ports are 1-65535, a range low-high")
    return a, b


def parse_publish(spec):
    """-p [ip:][hostport:]containerport[/proto] -> [("80/tcp", {"HostIp", "HostPort"})]."""
    rest, _, proto = spec.partition("/")
    proto = proto or "tcp"
    if proto not in PROTOS:
        raise NetworkError(f"invalid port spec {spec!r}: invalid proto {proto!r} (tcp, udp, sctp)")
    ip = ""
    if rest.startswith("["):   # [v6]:h:c
        close = rest.find("]")
        if close < 0:
            raise NetworkError(f"invalid port spec {spec!r}: unclosed [")
        if rest[close + 1:close + 2] != ":":
            raise NetworkError(f"invalid port spec {spec!r}: expected [IP]:HOSTPORT:CONTAINERPORT")
        ip, parts = rest[1:close], rest[close + 2:].split(":")
        if len(parts) != 2:
            raise NetworkError(f"invalid port spec {spec!r}: expected [IP]:HOSTPORT:CONTAINERPORT")
    else:
        parts = rest.split(":")
        if len(parts) > 2:
            ip, parts = ":".join(parts[:-2]), parts[-2:]
    if len(parts) == 1:
        host, ctr = "", parts[0]
    else:
        host, ctr = parts
    if ip:
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            raise NetworkError(f"invalid port spec {spec!r}: invalid IP address {ip!r}") from None
        if ":" in ip:
            raise NetworkError(f"invalid port spec {spec!r}: IPv6 host addresses are not supported (no IPv6 "
                               f"on pyctr's networks)")
    if not ctr:
        raise NetworkError(f"invalid port spec {spec!r}: no container port")
    c0, c1 = _port_range(ctr, spec)
    if host:
        h0, h1 = _port_range(host, spec)
        if h1 - h0 != c1 - c0 and not (c0 == c1):
            raise NetworkError(f"invalid port spec {spec!r}: invalid ranges specified for container and host "
                               f"Ports: {ctr} and {host}")
    out = []
    for i, c in enumerate(range(c0, c1 + 1)):
        if not host:
            hp = ""
        elif c0 == c1 and h1 != h0:
            hp = f"{h0}-{h1}"   # a host range for one port: the first free one at start
        else:
            hp = str(h0 + i)
        out.append((f"{c}/{proto}", {"HostIp": ip, "HostPort": hp}))
    return out


def port_key(text):
    port, _, proto = text.partition("/")
    _port_range(port, text)
    proto = proto or "tcp"
    if proto not in PROTOS:
        raise NetworkError(f"invalid proto {proto!r} in {text!r}")
    return f"{port}/{proto}"


def bindings(publish):
    """(ExposedPorts additions, PortBindings) for create (-P is resolved at start: with_exposed)."""
    pb = {}
    for spec in publish:
        for key, b in parse_publish(spec):
            pb.setdefault(key, []).append(b)
    return {k: {} for k in pb}, pb


def with_exposed(port_bindings, exposed):
    """-P: every exposed port without a binding gets a random host port, as Docker at start."""
    pb = dict(port_bindings or {})
    for key in exposed or {}:
        pb.setdefault(key, [{"HostIp": "", "HostPort": ""}])
    return pb


class Holder:
    """Host sockets bound for a container's published ports: TCP listening (backlog 1, never
    accepted: the DNAT rule takes the connections first), UDP bound."""

    def __init__(self):
        self.socks = []

    def fds(self):
        return tuple(s.fileno() for s in self.socks)

    def close(self):
        for s in self.socks:
            s.close()
        self.socks = []

    def bind(self, ip, port, proto, wait=1.0):
        kind = socket.SOCK_DGRAM if proto == "udp" else socket.SOCK_STREAM
        if proto == "sctp":
            raise NetworkError("publishing sctp ports is not supported by pyctr")
        s = socket.socket(socket.AF_INET, kind)
        deadline = time.monotonic() + wait
        try:
            while True:   # the port of a container just stopped may be held a moment by its dying monitor
                try:
                    s.bind((ip or "0.0.0.0", port))
                    break
                except OSError as e:
                    if e.errno != errno.EADDRINUSE or time.monotonic() >= deadline:
                        raise
                    time.sleep(0.02)
            if kind == socket.SOCK_STREAM:
                s.listen(1)
        except OSError as e:
            s.close()
            raise NetworkError(f"driver failed programming external connectivity: Bind for "
                               f"{ip or '0.0.0.0'}:{port} failed: {e.strerror.lower() if e.strerror else e}") from None
        self.socks.append(s)
        return s.getsockname()[1]


def bind_all(port_bindings, previous=None):
    """Bind every binding; returns (Holder, NetworkSettings.Ports, CNI portMappings). A binding without
    a host port gets the one it had before (`previous`) if free, else an ephemeral one."""
    holder, ports, mappings = Holder(), {}, []
    try:
        for key in sorted(port_bindings, key=lambda k: (int(k.split("/")[0]), k)):
            cport, proto = key.split("/")
            for i, b in enumerate(port_bindings[key] or []):
                ip, hp = b.get("HostIp") or "", b.get("HostPort") or ""
                got = None
                if hp and "-" not in hp:
                    got = holder.bind(ip, int(hp), proto)
                else:
                    prev = ((previous or {}).get(key) or [])
                    cands = [int(prev[i]["HostPort"])] if i < len(prev) and prev[i].get("HostPort") else []
                    if "-" in hp:
                        lo, hi = map(int, hp.split("-"))
                        cands = [c for c in cands if lo <= c <= hi] + list(range(lo, hi + 1))
                    else:
                        cands.append(0)
                    for c in cands:
                        try:
                            got = holder.bind(ip, c, proto, wait=0)
                            break
                        except NetworkError:
                            if c == cands[-1]:
                                raise
                ports.setdefault(key, []).append({"HostIp": ip or "0.0.0.0", "HostPort": str(got)})
                m = {"hostPort": got, "containerPort": int(cport), "protocol": proto}
                if ip:
                    m["hostIP"] = ip
                mappings.append(m)
    except BaseException:
        holder.close()
        raise
    return holder, ports, mappings


def port_lines(rec, private=None):
    """`docker port` lines: `80/tcp -> 0.0.0.0:8080`, or with a private port just `0.0.0.0:8080`."""
    from pyctr.container.errors import CommandError
    ports = (rec.get("NetworkSettings") or {}).get("Ports") or {} if rec.get("Run") else {}
    if private:
        try:
            key = port_key(private)
        except NetworkError as e:
            raise CommandError(str(e)) from None
        got = ports.get(key) or []
        if not got:
            raise CommandError(f"No public port '{key}' published for {rec['Id'][:12]}")
        return [f"{b['HostIp']}:{b['HostPort']}" for b in got]
    return [f"{k} -> {b['HostIp']}:{b['HostPort']}" for k in sorted(ports, key=lambda k: (int(k.split('/')[0]), k))
            for b in ports[k] or []]
