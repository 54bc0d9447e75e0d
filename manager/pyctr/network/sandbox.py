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
    result = cni.add(conf, cid, netns.path(ctx, cid), ifname, args, rc)
    entry["result"] = result
    _atomic_write(cache, json.dumps(entry).encode())
    bridge.note_ip_forward(before, net["Name"])
    ip = next((x for x in result.get("ips") or [] if "." in x["address"]), None)
    mac = next((i.get("mac", "") for i in result.get("interfaces") or [] if i.get("name") == ifname), "")
    addr, _, plen = (ip["address"] if ip else "").partition("/")
    ep.update(NetworkID=net["Id"], EndpointID=os.urandom(32).hex(), Gateway=(ip or {}).get("gateway", ""),
              IPAddress=addr, IPPrefixLen=int(plen or 0), MacAddress=mac, IPv6Gateway="",
              GlobalIPv6Address="", GlobalIPv6PrefixLen=0)
    ep.setdefault("Aliases", [])
    ns.join(net["Name"], cid, {"Name": rec["Name"], "IPAddress": addr, "Aliases": ep["Aliases"]})


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
        p = os.path.join(d, name)
        try:
            with open(p) as f:
                e = json.load(f)
            conf = e["config"]
            try:
                cni.delete(conf, cid, netns.path(ctx, cid), e["ifName"], e["args"], e["runtimeConfig"], e["result"])
            except cni.NetworkError:
                # a plugin's DEL failed (its binary gone?): the cache stays and the next command retries
                continue
        except (OSError, ValueError, KeyError):
            conf = None
        os.unlink(p)
        if conf:
            ns.leave(conf["name"], cid)
            try:
                bridge.remove_if_unused(ns, ns.load(conf["name"]))
            except cni.NetworkError:
                pass
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
