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
        holder, bound, mappings = ports.bind_all(rec["HostConfig"].get("PortBindings") or {},
                                                 settings.get("LastPorts"))
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
