"""Helpers for the network tests: what the host's network looks like (links, netns, iptables rules,
ip_forward) so a test can prove pyctr left nothing, and a UDP echo run inside a container's netns
(busybox has no UDP server)."""
import os
import socket
import subprocess

from integration.helpers.runtime import execute

# the shared chains the portmap and firewall plugins make once per host and never remove (podman
# with CNI leaves them alike); a test removes them if it made them and nobody else uses them
SCAFFOLD = {"nat :CNI-HOSTPORT-DNAT - [0:0]", "nat :CNI-HOSTPORT-MASQ - [0:0]", "nat :CNI-HOSTPORT-SETMARK - [0:0]",
            "nat -A PREROUTING -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT",
            "nat -A OUTPUT -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT",
            'nat -A POSTROUTING -m comment --comment "CNI portfwd requiring masquerade" -j CNI-HOSTPORT-MASQ',
            "nat -A CNI-HOSTPORT-MASQ -m mark --mark 0x2000/0x2000 -j MASQUERADE",
            'nat -A CNI-HOSTPORT-SETMARK -m comment --comment "CNI portfwd masquerade mark" -j MARK --set-xmark '
            '0x2000/0x2000',
            "filter :CNI-ADMIN - [0:0]", "filter :CNI-FORWARD - [0:0]",
            'filter -A FORWARD -m comment --comment "CNI firewall plugin rules" -j CNI-FORWARD',
            'filter -A CNI-FORWARD -m comment --comment "CNI firewall plugin admin overrides" -j CNI-ADMIN'}


def rules():
    out = set()
    for table in ("filter", "nat"):
        cp = execute(["iptables-save", "-t", table])
        out |= {f"{table} {ln}" for ln in cp.stdout.splitlines() if ln.startswith(("-A", ":"))
                and not ln.startswith((":INPUT", ":OUTPUT", ":FORWARD", ":PREROUTING", ":POSTROUTING"))}
    return out


def tables():
    return set(execute(["nft", "list", "tables"]).stdout.splitlines())


def links():
    return set(os.listdir("/sys/class/net"))


def ip_forward():
    with open("/proc/sys/net/ipv4/ip_forward") as f:
        return f.read().strip()


class HostNet:
    """A snapshot; check() lists what is new since (pyctr's, as the tests run alone on their bridges)."""

    def __init__(self):
        self.links, self.rules, self.forward, self.tables = links(), rules(), ip_forward(), tables()

    def ports_of_new_bridges(self):
        """The veths on the bridges made since (a store's own prefix): pyctr's, unlike the veths of
        other container engines that tests running at the same time make."""
        out = set()
        for n in links() - self.links:
            try:
                out |= set(os.listdir(f"/sys/class/net/{n}/brif"))
            except OSError:
                pass
        return out

    def new_links(self, ours=()):
        return sorted(n for n in links() - self.links if n.startswith(("pc", "pyctr")) or n in ours)

    def new_rules(self):
        return sorted(rules() - self.rules - SCAFFOLD)

    def restore(self):
        """ip_forward as it was (the bridge plugin sets it), and the scaffolding if it was not there
        before and holds no one's rules now."""
        if ip_forward() != self.forward:
            with open("/proc/sys/net/ipv4/ip_forward", "w") as f:
                f.write(self.forward)
        made = rules() - self.rules
        if made and made <= SCAFFOLD:   # the chains are new and hold nothing else: theirs to remove
            for table, cmds in (("nat", [["-D", "PREROUTING", "-m", "addrtype", "--dst-type", "LOCAL", "-j",
                                          "CNI-HOSTPORT-DNAT"],
                                         ["-D", "OUTPUT", "-m", "addrtype", "--dst-type", "LOCAL", "-j",
                                          "CNI-HOSTPORT-DNAT"],
                                         ["-D", "POSTROUTING", "-m", "comment", "--comment",
                                          "CNI portfwd requiring masquerade", "-j", "CNI-HOSTPORT-MASQ"]]),
                                ("filter", [["-D", "FORWARD", "-m", "comment", "--comment",
                                             "CNI firewall plugin rules", "-j", "CNI-FORWARD"]])):
                for c in cmds:
                    if any(c[1] in r and c[-1] in r for r in made):
                        execute(["iptables", "-t", table, *c])
            for table, chains in (("nat", ("CNI-HOSTPORT-DNAT", "CNI-HOSTPORT-MASQ", "CNI-HOSTPORT-SETMARK")),
                                  ("filter", ("CNI-FORWARD", "CNI-ADMIN"))):
                for ch in chains:
                    if any(f":{ch} " in r for r in made):
                        execute(["iptables", "-t", table, "-F", ch])
                        execute(["iptables", "-t", table, "-X", ch])
            for t in tables() - getattr(self, "tables", tables()):   # iptables-nft made them for the plugins
                listing = execute(["nft", "list", *t.split()]).stdout
                if not any(ln.strip() and not ln.strip().startswith(("table", "chain", "type", "}"))
                           for ln in listing.splitlines()):
                    execute(["nft", "delete", *t.split()])


def store_leftovers(p):
    """A pyctr store's network state that must be empty once its containers are gone."""
    problems = []
    nsdir = os.path.join(p.runroot, "netns")
    if os.path.isdir(nsdir) and os.listdir(nsdir):
        problems.append(f"netns files {os.listdir(nsdir)}")
    ipam = os.path.join(p.root, "networks", "ipam")
    for net in os.listdir(ipam) if os.path.isdir(ipam) else ():
        leases = [n for n in os.listdir(os.path.join(ipam, net)) if n != "lock" and not n.startswith("last_")]
        if leases:
            problems.append(f"IPAM leases {net}: {leases}")
    members = os.path.join(p.root, "networks", "members")
    for net in os.listdir(members) if os.path.isdir(members) else ():
        if os.listdir(os.path.join(members, net)):
            problems.append(f"members of {net}: {os.listdir(os.path.join(members, net))}")
    return problems


UDP_ECHO = ("import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\ns.bind(('0.0.0.0', {port}))\n"
            "print('ready', flush=True)\nwhile True:\n    d, a = s.recvfrom(512)\n    s.sendto(b'echo:' + d, a)\n")


def udp_echo_in(netns_path, port):
    """A UDP echo server in a container's netns (the test's own process, killed by the caller)."""
    proc = subprocess.Popen(["nsenter", f"--net={netns_path}", "python3", "-c", UDP_ECHO.format(port=port)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True)
    assert proc.stdout.readline().strip() == b"ready"
    return proc


def udp_ask(host, port, payload=b"ping", timeout=3):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(payload, (host, port))
        return s.recvfrom(512)[0]


def free_port(kind=socket.SOCK_STREAM):
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(host, port, path="/hostname", timeout=5):
    import urllib.request
    with urllib.request.urlopen(f"http://{host}:{port}{path}", timeout=timeout) as r:
        return r.read().decode()
