"""A container's networking for one run: the netns, the held host ports, one CNI ADD per network
(eth0, eth1, ...) and the files; teardown runs DEL with the cached ADD (config, args and result, in
<container dir>/cni/<net>.json, written *before* the ADD so a killed pyctr's next command can DEL
a half-made attachment) and removes the netns. Both hold the network store's lock, so addresses are
handed out one at a time and a bridge is never removed under a concurrent ADD."""
import json
import os

from pyctr.container.errors import NoSuchContainer
from pyctr.container.store import _atomic_write
from pyctr.network import bridge, cni, files, netns
from pyctr.network.store import DEFAULT, NetworkStore, conflist


LOOPBACK = {"cniVersion": "1.0.0", "name": "lo", "plugins": [{"type": "loopback"}]}


def store(ctx):
    return NetworkStore(ctx.root)


def bridged(rec):
    mode = rec["HostConfig"].get("NetworkMode") or "none"
    return mode not in ("none", "host") and not mode.startswith("container:")


def _cache_dir(ctx, cid):
    return ctx.containers.path(cid, "cni")


def pending(ctx, rec):
    """Attachments of a container that has no run: what a killed command left."""
    d = _cache_dir(ctx, rec["Id"])
    return bool(os.path.isdir(d) and os.listdir(d)) or os.path.exists(netns.path(ctx, rec["Id"]))


def _peers(ns, rec):
    """Names of the other containers on rec's user-defined networks, for its hosts file."""
    out = []
    for net in (rec.get("NetworkSettings") or {}).get("Networks") or {}:
        if net == DEFAULT:
            continue
        for cid, m in ns.members(net).items():
            if cid != rec["Id"] and m.get("IPAddress"):
                out.append({"IPAddress": m["IPAddress"], "Names": [m["Name"]] + m.get("Aliases", [])})
    return out


def setup(ctx, rec, holder_ports):
    """ADD on every network of rec (NetworkSettings.Networks as create or connect left them);
    rec's NetworkSettings filled. holder_ports: (NetworkSettings.Ports, portMappings)."""
    cid = rec["Id"]
    ns = store(ctx)
    ports, mappings = holder_ports
    settings = rec["NetworkSettings"]
    with ns.lock:
        path = netns.create(ctx, cid)
        try:
            cni.add(LOOPBACK, cid, path, "lo", {}, {})   # lo up; gone with the netns, no DEL needed
            os.makedirs(_cache_dir(ctx, cid), mode=0o700, exist_ok=True)
            for i, (name, ep) in enumerate(list(settings["Networks"].items())):
                _attach(ctx, ns, rec, name, ep, f"eth{i}", mappings if i == 0 else [])
            settings.update(SandboxKey=path, Ports=ports)
            first = next(iter(settings["Networks"].values()), {})
            for k in ("IPAddress", "IPPrefixLen", "Gateway", "MacAddress"):
                settings[k] = first.get(k, "")
            _refresh_peers(ctx, ns, rec)
        except BaseException:
            _teardown(ctx, ns, rec)
            raise
    return path


def _attach(ctx, ns, rec, name, ep, ifname, mappings):
    cid = rec["Id"]
    net = ns.load(name)
    conf = conflist(net, ns.ipam_dir)
    cni.check_plugins(conf)
    args = {"IgnoreUnknown": "1", "K8S_POD_NAME": rec["Name"]}
    rc = {"portMappings": mappings} if mappings else {}
    cache = os.path.join(_cache_dir(ctx, cid), net["Name"] + ".json")
    entry = {"kind": "cniCacheV1", "config": conf, "ifName": ifname, "args": args, "runtimeConfig": rc,
             "result": None}
    _atomic_write(cache, json.dumps(entry).encode())
    before = bridge.ip_forward()

    def cache_result(result):
        entry["result"] = result
        _atomic_write(cache, json.dumps(entry).encode())
    result = cni.add(conf, cid, netns.path(ctx, cid), ifname, args, rc, cache_result)
    bridge.note_ip_forward(before, net["Name"])
    ip = next((x for x in result.get("ips") or [] if "." in x["address"]), None)
    mac = next((i.get("mac", "") for i in result.get("interfaces") or [] if i.get("name") == ifname), "")
    addr, _, plen = (ip["address"] if ip else "").partition("/")
    ep.update(NetworkID=net["Id"], EndpointID=os.urandom(32).hex(), Gateway=(ip or {}).get("gateway", ""),
              IPAddress=addr, IPPrefixLen=int(plen or 0), MacAddress=mac, IPv6Gateway="",
              GlobalIPv6Address="", GlobalIPv6PrefixLen=0)
    ep.setdefault("Aliases", [])
    ns.join(net["Name"], cid, {"Name": rec["Name"], "IPAddress": addr, "Aliases": ep["Aliases"],
                               "IPPrefixLen": ep["IPPrefixLen"], "MacAddress": mac, "EndpointID": ep["EndpointID"]})


def connect(ctx, rec, name, aliases):
    """Join a running container to one more network (CNI ADD into its netns on the next ethN)."""
    ns = store(ctx)
    ep = {"Aliases": list(aliases)}
    used = set()
    d = _cache_dir(ctx, rec["Id"])
    for n in os.listdir(d) if os.path.isdir(d) else ():
        try:
            with open(os.path.join(d, n)) as f:
                used.add(json.load(f)["ifName"])
        except (OSError, ValueError, KeyError):
            pass
    ifname = next(f"eth{i}" for i in range(len(used) + 1) if f"eth{i}" not in used)
    with ns.lock:
        rec["NetworkSettings"]["Networks"][name] = ep
        try:
            _attach(ctx, ns, rec, name, ep, ifname, [])
        except BaseException:
            _detach(ctx, ns, rec, name)
            rec["NetworkSettings"]["Networks"].pop(name, None)
            raise
        _refresh_peers(ctx, ns, rec)


def disconnect(ctx, rec, name):
    ns = store(ctx)
    with ns.lock:
        _detach(ctx, ns, rec, name)
        ep = rec["NetworkSettings"]["Networks"].pop(name, None)
        _refresh_peers(ctx, ns, rec)
        if ep is not None:   # the peers that were on the network it left
            files.rewrite_hosts(ctx.containers.dir(rec["Id"]), rec, _peers(ns, rec))
            for cid in ns.members(name):
                try:
                    other = ctx.containers.load(cid)
                except NoSuchContainer:
                    continue
                files.rewrite_hosts(ctx.containers.dir(cid), other, _peers(ns, other))


def _detach(ctx, ns, rec, name):
    """DEL of one network's attachment (its cache entry); False if a plugin failed (cache kept)."""
    cid = rec["Id"]
    p = os.path.join(_cache_dir(ctx, cid), name + ".json")
    conf = None
    try:
        with open(p) as f:
            e = json.load(f)
        conf = e["config"]
        cni.delete(conf, cid, netns.path(ctx, cid), e["ifName"], e["args"], e["runtimeConfig"], e["result"])
    except cni.NetworkError:
        return False   # a plugin's DEL failed (its binary gone?): the cache stays, the next command retries
    except FileNotFoundError:
        pass
    except (OSError, ValueError, KeyError):
        conf = None
    try:
        os.unlink(p)
    except FileNotFoundError:
        pass
    ns.leave(name, cid)
    try:
        bridge.remove_if_unused(ns, ns.load(conf["name"] if conf else name))
    except cni.NetworkError:
        pass
    return True


def teardown(ctx, rec):
    """DEL every cached attachment, remove the netns; idempotent, every step tried."""
    if not pending(ctx, rec):
        return
    ns = store(ctx)
    with ns.lock:
        _teardown(ctx, ns, rec)


def _teardown(ctx, ns, rec):
    cid = rec["Id"]
    d = _cache_dir(ctx, cid)
    for name in sorted(os.listdir(d)) if os.path.isdir(d) else ():
        if name.endswith(".json"):
            _detach(ctx, ns, rec, name[:-5])
    try:
        os.rmdir(d)
    except OSError:
        pass
    netns.remove(ctx, cid)
    settings = rec.get("NetworkSettings") or {}
    for net, ep in (settings.get("Networks") or {}).items():
        ns.leave(net, cid)
        for k in ("NetworkID", "EndpointID", "Gateway", "IPAddress", "MacAddress"):
            ep[k] = ""
        ep["IPPrefixLen"] = 0
    if settings.get("Ports"):
        settings["LastPorts"] = settings["Ports"]   # a restart gets the same random host ports if free
    settings.update(Ports={}, IPAddress="", Gateway="", MacAddress="", IPPrefixLen=0, SandboxKey="")
    _refresh_peers(ctx, ns, rec)


def _refresh_peers(ctx, ns, rec):
    """Rewrite the hosts files of rec's peers (and rec's own when it runs) after a join or leave."""
    seen = set()
    for net in (rec.get("NetworkSettings") or {}).get("Networks") or {}:
        if net == DEFAULT:
            continue
        for cid in ns.members(net):
            if cid in seen:
                continue
            seen.add(cid)
            try:
                other = ctx.containers.load(cid)
            except NoSuchContainer:   # removed meanwhile: nothing to refresh
                continue
            d = ctx.containers.dir(cid)
            if os.path.exists(os.path.join(d, "hosts")):
                files.rewrite_hosts(d, other if cid != rec["Id"] else rec, _peers(ns, other if cid != rec["Id"] else rec))


def peers(ctx, rec):
    return _peers(store(ctx), rec)
