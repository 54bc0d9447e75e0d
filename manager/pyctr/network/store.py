"""The network store under <root>/networks: one Docker-shaped record per network, the conflist the
plugins get built from it (never written to /etc/cni), host-local's private dataDir, and the
members of each network (for the hosts files that give names on user-defined networks).

    networks/lock                 the store's flock: create/rm, and ADD/DEL with the bridge's removal
    networks/<name>.json          the network's record (`network inspect` without Containers)
    networks/ipam/                host-local's dataDir (<net>/<ip> leases; host-local's own lock)
    networks/members/<net>/<cid>  {"Name", "IPAddress", "Aliases", "Hosts"} of an attached container"""
import ipaddress
import json
import os
import re
import time

from pyctr.container.store import Lock, _atomic_write
from pyctr.network.errors import NetworkError, NoSuchNetwork

DEFAULT = "bridge"
DEFAULT_ROOT = "/var/lib/pyctr"
DEFAULT_SUBNET = "10.89.0.0/24"
NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
RESERVED = ("none", "host", "default")


def host_routes():
    """The host's IPv4 routes (destination networks) from /proc/net/route: subnets a network must not take."""
    out = []
    try:
        with open("/proc/net/route") as f:
            next(f)
            for line in f:
                p = line.split()
                dst, mask = int(p[1], 16), int(p[7], 16)
                if mask == 0:
                    continue  # the default route overlaps everything and says nothing
                to_ip = lambda v: ipaddress.IPv4Address(int.from_bytes(v.to_bytes(4, "little"), "big"))
                out.append((p[0], ipaddress.IPv4Network(f"{to_ip(dst)}/{to_ip(mask)}", strict=False)))
    except (OSError, StopIteration, ValueError):
        pass
    return out


class NetworkStore:
    def __init__(self, root):
        import hashlib
        root = os.path.abspath(root)
        self.base = os.path.join(root, "networks")
        # bridge names are host-wide: a store other than the default one gets its own prefix
        digest = hashlib.sha256(root.encode()).hexdigest()
        self.bridge_prefix = "pyctr" if root == DEFAULT_ROOT else "pc" + digest[:6] + "_"
        # and its subnets start elsewhere in 10.89/16: stores made at once (tests) do not pick the same
        self.subnet_offset = 0 if root == DEFAULT_ROOT else int(digest[6:10], 16) % 250 + 1
        self.ipam_dir = os.path.join(self.base, "ipam")
        self.lock = Lock(os.path.join(self.base, "lock")) if self._mk() else None

    def _mk(self):
        os.makedirs(os.path.join(self.base, "members"), mode=0o700, exist_ok=True)
        return True

    def path(self, name):
        return os.path.join(self.base, name + ".json")

    def names(self):
        return sorted(n[:-5] for n in os.listdir(self.base) if n.endswith(".json"))

    def all(self):
        out = []
        for n in self.names():
            try:
                out.append(self.load(n))
            except NoSuchNetwork:
                pass
        return out

    def load(self, ref):
        if ref == DEFAULT or ref == "default":
            return self.default()
        if NAME_RE.match(ref or "") and os.path.exists(self.path(ref)):
            with open(self.path(ref)) as f:
                return json.load(f)
        hits = [n for n in self.all_raw() if n["Id"].startswith(ref or "\0")] if re.fullmatch(r"[0-9a-f]{1,64}", ref or "") else []
        if len(hits) == 1:
            return hits[0]
        raise NoSuchNetwork(ref)

    def all_raw(self):
        out = []
        for n in self.names():
            try:
                with open(self.path(n)) as f:
                    out.append(json.load(f))
            except (OSError, ValueError):
                pass
        return out

    def default(self):
        if os.path.exists(self.path(DEFAULT)):
            with open(self.path(DEFAULT)) as f:
                return json.load(f)
        with self.lock:
            if os.path.exists(self.path(DEFAULT)):
                return self.load(DEFAULT)
            return self._create(DEFAULT, None, None, False, {}, self.bridge_prefix + "0")

    def create(self, name, subnet=None, gateway=None, internal=False, labels=None, driver="bridge"):
        if driver != "bridge":
            raise NetworkError(f"plugin \"{driver}\" not found (pyctr has the bridge driver)")
        if not NAME_RE.match(name or ""):
            raise NetworkError(f"invalid network name {name!r}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
        if name in RESERVED or name == DEFAULT:
            raise NetworkError(f"operation is not permitted on predefined {name} network")
        with self.lock:
            if os.path.exists(self.path(name)):
                raise NetworkError(f"network with name {name} already exists")
            used = {n["Options"]["com.docker.network.bridge.name"] for n in self.all_raw()}
            bridge = next(b for b in (f"{self.bridge_prefix}{i}" for i in range(1, 10000))
                          if b not in used and not os.path.exists(f"/sys/class/net/{b}"))
            return self._create(name, subnet, gateway, internal, labels or {}, bridge)

    def _create(self, name, subnet, gateway, internal, labels, bridge):
        taken = [(f"network {n['Name']}", ipaddress.ip_network(n["IPAM"]["Config"][0]["Subnet"])) for n in self.all_raw()]
        taken += [(f"the host's route on {dev}", net) for dev, net in host_routes()]
        if subnet:
            try:
                net = ipaddress.IPv4Network(subnet, strict=False)
            except ValueError:
                raise NetworkError(f"invalid subnet {subnet!r}: an IPv4 CIDR such as 10.90.0.0/24") from None
            if net.prefixlen > 30:
                raise NetworkError(f"subnet {subnet} is too small (at most /30)")
            clash = next((what for what, t in taken if t.overlaps(net)), None)
            if clash:
                raise NetworkError(f"invalid pool request: Pool overlaps with other one on this address space "
                                   f"({net} overlaps {clash})")
        else:
            if gateway:
                raise NetworkError("cannot use --gateway without --subnet")
            base = ipaddress.IPv4Network(DEFAULT_SUBNET)
            net = next((c for c in (ipaddress.IPv4Network((int(base.network_address) + i * 256, 24))
                                    for i in range(self.subnet_offset, 255 * 256)) if not any(t.overlaps(c) for _, t in taken)), None)
            if net is None:
                raise NetworkError("could not find an available, non-overlapping IPv4 address pool")
        if gateway:
            try:
                gw = ipaddress.IPv4Address(gateway)
            except ValueError:
                raise NetworkError(f"invalid gateway {gateway!r}") from None
            if gw not in net or gw in (net.network_address, net.broadcast_address):
                raise NetworkError(f"no matching subnet for gateway {gateway}")
        else:
            gw = net.network_address + 1
        rec = {"Name": name, "Id": os.urandom(32).hex(), "Created": _now(), "Scope": "local", "Driver": "bridge",
               "EnableIPv6": False, "IPAM": {"Driver": "default", "Options": {},
                                             "Config": [{"Subnet": str(net), "Gateway": str(gw)}]},
               "Internal": bool(internal), "Attachable": False, "Ingress": False, "ConfigFrom": {"Network": ""},
               "ConfigOnly": False, "Options": {"com.docker.network.bridge.name": bridge}, "Labels": labels}
        _atomic_write(self.path(name), json.dumps(rec).encode())
        return rec

    def remove(self, name):
        """The network's record, its leases dir and its bridge; refused while a container uses it."""
        from pyctr.network import bridge
        rec = self.load(name)
        if rec["Name"] == DEFAULT:
            raise NetworkError(f"{DEFAULT} is a pre-defined network and cannot be removed")
        with self.lock:
            if self.members(rec["Name"]):
                raise NetworkError(f"error while removing network: network {rec['Name']} id {rec['Id']} has "
                                   f"active endpoints")
            os.unlink(self.path(rec["Name"]))
            bridge.remove_if_unused(self, rec)
        return rec

    # --- members ---------------------------------------------------------------------------------
    def members(self, net):
        d = os.path.join(self.base, "members", net)
        out = {}
        for cid in os.listdir(d) if os.path.isdir(d) else ():
            try:
                with open(os.path.join(d, cid)) as f:
                    out[cid] = json.load(f)
            except (OSError, ValueError):
                pass
        return out

    def join(self, net, cid, info):
        d = os.path.join(self.base, "members", net)
        os.makedirs(d, mode=0o700, exist_ok=True)
        _atomic_write(os.path.join(d, cid), json.dumps(info).encode())

    def leave(self, net, cid):
        try:
            os.unlink(os.path.join(self.base, "members", net, cid))
        except FileNotFoundError:
            pass


def _now():
    from pyctr.container.lifecycle import now_rfc3339
    return now_rfc3339(time.time())


def conflist(rec, ipam_dir):
    """podman 4's conflist for a bridge network (libnet4:cni/cni_conversion.go), cniVersion 1.0.0."""
    cfg = rec["IPAM"]["Config"][0]
    internal = rec.get("Internal")
    ipam = {"type": "host-local", "ranges": [[{"subnet": cfg["Subnet"], "gateway": cfg["Gateway"]}]],
            "dataDir": ipam_dir}
    if not internal:
        ipam["routes"] = [{"dst": "0.0.0.0/0"}]
    return {"cniVersion": "1.0.0", "name": rec["Name"], "plugins": [
        {"type": "bridge", "bridge": rec["Options"]["com.docker.network.bridge.name"], "isGateway": True,
         "ipMasq": not internal, "hairpinMode": True, "ipam": ipam},
        {"type": "portmap", "capabilities": {"portMappings": True}, "snat": True},
        {"type": "firewall", "backend": "iptables"},
        {"type": "tuning"}]}
