"""The container side of networking, called from container/lifecycle.py: the endpoints a create
records, and bringing a container's networks up at start (ports bound first: a port in use fails
the start before anything is made)."""
from pyctr.container.errors import ContainerError
from pyctr.network import ports, sandbox
from pyctr.network.errors import NetworkError, NoSuchNetwork
from pyctr.network.store import DEFAULT


def endpoints(ctx, host, aliases):
    """NetworkSettings.Networks of a new container: {network name: {"Aliases": [...]}}."""
    mode = host.get("NetworkMode") or "none"
    if not sandbox.bridged({"HostConfig": host}):
        if aliases:
            raise ContainerError("network-scoped aliases are only supported for user-defined networks")
        return {}
    try:
        net = sandbox.store(ctx).load(mode)
    except NoSuchNetwork:
        raise ContainerError(f"network {mode} not found") from None
    if net["Name"] == DEFAULT and aliases:
        raise ContainerError("network-scoped aliases are only supported for user-defined networks")
    host["NetworkMode"] = net["Name"] if net["Name"] != DEFAULT else "bridge"
    return {net["Name"]: {"Aliases": list(aliases)}}


def up(ctx, rec):
    """Bind the host ports, make the netns, CNI ADD on every network; returns the port Holder (the
    caller hands its fds to the monitor, then closes it). A failure leaves nothing: what was made
    is torn down here, and release() finds the rest."""
    if not sandbox.bridged(rec):
        return ports.Holder()
    settings = rec.setdefault("NetworkSettings", {"Networks": {}, "Ports": {}})
    try:
        wanted = rec["HostConfig"].get("PortBindings") or {}
        if rec["HostConfig"].get("PublishAllPorts"):
            wanted = ports.with_exposed(wanted, rec["Config"].get("ExposedPorts"))
        holder, bound, mappings = ports.bind_all(wanted, settings.get("LastPorts"))
        for key in rec["Config"].get("ExposedPorts") or {}:
            bound.setdefault(key, None)   # Docker's exposed-only port: null
    except NetworkError as e:
        raise ContainerError(str(e)) from None
    try:
        sandbox.setup(ctx, rec, (bound, mappings))
    except NetworkError as e:
        holder.close()
        raise ContainerError(str(e)) from None
    except BaseException:
        holder.close()
        raise
    return holder


def peers(ctx, rec):
    return sandbox.peers(ctx, rec) if sandbox.bridged(rec) else ()


def _container_for_network_change(ctx, ref):
    from pyctr.container.errors import CommandError
    cid = ctx.containers.lookup(ref)
    rec = ctx.containers.load(cid)
    if not sandbox.bridged(rec):
        raise CommandError(f"container cannot be disconnected from host network or connected to host network"
                           if rec["HostConfig"].get("NetworkMode") == "host" else
                           f"container sharing network namespace with another container or host cannot be "
                           f"connected to any other network")
    return cid


def connect(ctx, ref, name, aliases):
    """`network connect`: a running container is attached at once (its hosts files and its peers'
    rewritten), a stopped one at its next start."""
    from pyctr.container import state
    from pyctr.container.errors import CommandError
    net = sandbox.store(ctx).load(name)
    if net["Name"] == DEFAULT and aliases:
        raise CommandError("network-scoped aliases are only supported for user-defined networks")
    cid = _container_for_network_change(ctx, ref)
    cs = ctx.containers
    with cs.container_lock(cid):
        rec = cs.load(cid)
        if net["Name"] in rec["NetworkSettings"]["Networks"]:
            raise CommandError(f"endpoint with name {rec['Name']} already exists in network {net['Name']}")
        if state.derive(cs, rec, ctx.runtime(rec, for_removal=True)).running:
            try:
                sandbox.connect(ctx, rec, net["Name"], aliases)
            except NetworkError as e:
                raise CommandError(str(e)) from None
        else:
            rec["NetworkSettings"]["Networks"][net["Name"]] = {"Aliases": list(aliases)}
        cs.save(rec)


def disconnect(ctx, ref, name, force=False):
    from pyctr.container.errors import CommandError
    ns = sandbox.store(ctx)
    try:
        net_name = ns.load(name)["Name"]
    except NoSuchNetwork:
        if not force:
            raise
        net_name = name
    cid = _container_for_network_change(ctx, ref)
    cs = ctx.containers
    with cs.container_lock(cid):
        rec = cs.load(cid)
        if net_name not in rec["NetworkSettings"]["Networks"]:
            raise CommandError(f"container {cid} is not connected to network {net_name}")
        sandbox.disconnect(ctx, rec, net_name)
        cs.save(rec)
