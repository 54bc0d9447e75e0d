"""The container's root filesystem: the image's overlay2 layers plus the container's own upper
layer (created once, kept across stop/start, removed with the container), mounted by pyctr at
<container>/bundle/rootfs before the runtime's create and unmounted when the container stops; and
path operations inside it that never follow a symlink out (openat2 RESOLVE_IN_ROOT)."""
import errno
import os

from pyctr.container.errors import ContainerError


def mount_name(cid):
    return "container-" + cid[:32]


def create_layer(store, image_id, cid, target):
    """The upper layer, recorded as a layerdb mount (so image prune keeps its parents). Needs the
    image store locked."""
    from pyctr.image.mount import _layer
    from pyctr.image.unpack import ensure_unpacked
    chain = store.chain(image_id)
    if not chain:
        raise ContainerError(f"image {image_id} has no layers")
    ensure_unpacked(store, image_id)
    top = _layer(store, chain[-1])
    mount_id = store.overlay.create_rw(top["cache-id"])
    try:
        store.layerdb.add_mount(mount_name(cid), mount_id, chain[-1], target)
    except BaseException:
        store.overlay.remove(mount_id)
        raise
    return mount_id


def remove_layer(store, cid):
    """Needs the image store locked; unmounted first."""
    m = store.layerdb.get_mount(mount_name(cid))
    if not m:
        return
    unmount(m["target"])
    store.overlay.remove(m["mount-id"])
    store.layerdb.remove_mount(mount_name(cid))


def is_mounted(target):
    target = os.path.realpath(target)
    try:
        with open("/proc/self/mountinfo", "rb") as f:
            for line in f:
                mp = line.split(b" ", 5)[4].decode(errors="replace")
                if mp.replace("\\040", " ") == target:
                    return True
    except OSError:
        return False
    return False


def mount(store, cid):
    m = store.layerdb.get_mount(mount_name(cid))
    if not m:
        raise ContainerError(f"container {cid[:12]}: its filesystem layer is missing")
    os.makedirs(m["target"], mode=0o755, exist_ok=True)
    if not is_mounted(m["target"]):
        store.overlay.mount(m["mount-id"], m["target"])
    return m["target"]


def unmount(target):
    from pyrunc.sys import calls
    while is_mounted(target):
        try:
            calls.umount2(target, 2)  # MNT_DETACH: a process still inside keeps its view, we are done
        except OSError as e:
            if e.errno in (errno.EINVAL, errno.ENOENT):
                return
            raise ContainerError(f"cannot unmount {target}: {e}") from None


def _open_root(rootfs):
    return os.open(rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)


def mkdir_in_root(rootfs, path, uid=0, gid=0):
    """mkdir -p of path inside rootfs, each component resolved inside it (a symlink in the image
    pointing at /etc of the host stays in the rootfs)."""
    from pyrunc.sys import calls, consts
    root = _open_root(rootfs)
    try:
        parts = [p for p in os.path.normpath("/" + path).split("/") if p]
        for i in range(1, len(parts) + 1):
            sub = "/".join(parts[:i])
            try:
                fd = calls.openat2(root, sub, os.O_PATH | os.O_DIRECTORY, 0,
                                   consts.RESOLVE_IN_ROOT | consts.RESOLVE_NO_MAGICLINKS)
                os.close(fd)
                continue
            except OSError as e:
                if e.errno != errno.ENOENT:
                    raise ContainerError(f"working directory {path}: {sub}: {e.strerror.lower()}") from None
            parent = calls.openat2(root, "/".join(parts[:i - 1]) or ".", os.O_PATH | os.O_DIRECTORY, 0,
                                   consts.RESOLVE_IN_ROOT | consts.RESOLVE_NO_MAGICLINKS)
            try:
                os.mkdir(parts[i - 1], 0o755, dir_fd=parent)
                os.chown(parts[i - 1], uid, gid, dir_fd=parent, follow_symlinks=False)
            except FileExistsError:
                pass
            finally:
                os.close(parent)
    finally:
        os.close(root)
