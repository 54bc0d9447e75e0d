"""Overlay mounts of an image: read-write (a fresh upper layer, for `mount` and `bundle`) and a
temporary read-only view (for `export`)."""
import contextlib
import os

from pyctr.errors import PyctrError
from pyctr.image.fsutil import rmtree


def _layer(store, chain_id):
    info = store.layerdb.get(chain_id)
    if not info:
        raise PyctrError(f"layer {chain_id} is missing from the layer store")
    return info


def mount_rw(store, image_id, name, target=None):
    """Create a rw layer over the image's top layer and mount it at target (default: its merged/).

    Recorded in layerdb/mounts/<name>; returns the mount point. Layers not unpacked yet (a pull
    with --no-unpack) are applied first."""
    from pyctr.image.unpack import ensure_unpacked
    chain = store.chain(image_id)
    if not chain:
        raise PyctrError(f"image {image_id} has no layers to mount")
    if store.layerdb.get_mount(name):
        raise PyctrError(f"{name} is already mounted (pyctr umount it first)")
    ensure_unpacked(store, image_id)
    top = _layer(store, chain[-1])
    mount_id = store.overlay.create_rw(top["cache-id"])
    target = target or os.path.join(store.overlay.dir(mount_id), "merged")
    try:
        store.layerdb.add_mount(name, mount_id, chain[-1], target)
        store.overlay.mount(mount_id, target)
    except BaseException:
        store.layerdb.remove_mount(name)
        store.overlay.remove(mount_id)
        raise
    return target


def umount(store, name):
    from pyrunc.sys import calls
    m = store.layerdb.get_mount(name)
    if not m:
        raise PyctrError(f"no pyctr mount named {name}")
    try:
        calls.umount2(m["target"], 0)
    except OSError as e:
        import errno
        if e.errno == errno.EBUSY:
            raise PyctrError(f"cannot unmount {m['target']}: it is busy (a container still uses it?)") from None
        if e.errno != errno.EINVAL:  # EINVAL: not mounted any more
            raise PyctrError(f"cannot unmount {m['target']}: {e}") from None
    store.overlay.remove(m["mount-id"])
    store.layerdb.remove_mount(name)
    return m


@contextlib.contextmanager
def read_only_view(store, chain_id):
    """The merged, read-only filesystem of a layer chain (its own diff if it is a single layer)."""
    from pyrunc.sys import calls
    top = _layer(store, chain_id)
    lowers = [store.overlay.diff(top["cache-id"])] + store.overlay.lowerdirs(top["cache-id"])
    if len(lowers) == 1:
        yield lowers[0]
        return
    target = os.path.join(store.overlay.tmp, "view-" + os.urandom(8).hex())
    os.makedirs(target)
    try:
        calls.mount("overlay", target, "overlay", 1,  # MS_RDONLY
                    "index=off,lowerdir=" + ":".join(lowers))
        try:
            yield target
        finally:
            calls.umount2(target, 2)  # MNT_DETACH
    finally:
        rmtree(target)
