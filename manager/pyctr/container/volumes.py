"""Containers' volumes (Docker's rules, moby daemon/create_unix.go, daemon/delete.go):

    -v NAME:/dst, --mount type=volume,src=NAME   the named volume, created if missing
    -v /dst, the image's VOLUMEs                 an anonymous volume (64-hex name, labelled
                                                 com.docker.volume.anonymous), in `volume ls`
    at create                                    an empty volume gets the image's content at
                                                 /dst (copy-up) unless nocopy
    rm -v, run --rm                              the anonymous volumes go, named ones stay
    start                                        tmpfs/bind (-o) volumes are mounted on _data
"""

from pyctr.container.errors import ContainerError


def users(root):
    """{volume name: [ids of the containers that have it in their mounts]}."""
    from pyctr.container.store import ContainerStore
    out = {}
    for rec in ContainerStore(root).all():
        for m in rec.get("Mounts") or []:
            if m.get("Type") == "volume" and m.get("Name"):
                out.setdefault(m["Name"], []).append(rec["Id"])
    return out


def store(ctx):
    from pyctr.volume.store import VolumeStore
    return VolumeStore(ctx.root, users=lambda: users(ctx.root), guard=ctx.containers.lock)


def attach(ctx, m):
    """Fill a volume mount (Type volume) with the volume's Name, Source and Driver; creates it."""
    from pyctr.errors import PyctrError
    try:
        vol, _ = store(ctx).create(m["Source"] or None)
    except PyctrError as e:
        raise ContainerError(str(e)) from None
    m.update(Name=vol["Name"], Source=vol["Mountpoint"], Driver="local",
             Anonymous=not m["Source"])
    return m


def copy_up(ctx, rec):
    """Docker's populateVolume for each volume of a new container (rec has its MountId)."""
    wanted = [m for m in rec.get("Mounts") or [] if m.get("Type") == "volume" and not m.get("NoCopy")]
    if not wanted:
        return
    from pyctr.container.fsview import ContainerFS
    vs = store(ctx)
    for m in wanted:
        vs.ensure_mounted(m["Name"])   # a tmpfs volume: filled on the host's mount, not a private one

    def fill(root):
        for m in wanted:
            vs.copy_up(m["Name"], root, m["Destination"])
        return 0
    ContainerFS(ctx, rec).run_in_lowers(fill)


def mount_all(ctx, rec):
    """Before a start: the -o volumes' mounts (after a reboot they are gone)."""
    vs = None
    for m in rec.get("Mounts") or []:
        if m.get("Type") == "volume" and m.get("Name"):
            vs = vs or store(ctx)
            from pyctr.errors import PyctrError
            try:
                vs.ensure_mounted(m["Name"])
            except PyctrError as e:
                raise ContainerError(str(e)) from None


def remove_anonymous(ctx, rec):
    """After the container's record is gone: its anonymous volumes (rm -v, --rm)."""
    from pyctr.errors import PyctrError
    vs = None
    for m in rec.get("Mounts") or []:
        if m.get("Type") == "volume" and m.get("Anonymous") and m.get("Name"):
            vs = vs or store(ctx)
            try:
                vs.remove(m["Name"], force=True)
            except PyctrError:
                pass   # in use by another container (--volumes-from): Docker keeps it too
