"""The container's filesystem view: propagation, the rootfs bind, mounts, /dev, and pivot_root."""
import os

from pyrunc.errors import StepError
from pyrunc.linux import devices, mounts
from pyrunc.linux.mount_options import PROPAGATION
from pyrunc.linux.paths import fd_path, mkdir_all, open_in_root
from pyrunc.sys import consts as c
from pyrunc.sys.calls import chroot, mount, pivot_root, umount2


def _needs_default_devices(config_mounts):
    # A bind-mounted /dev is the caller's own /dev: leave it as it is (runc does the same).
    for entry in config_mounts:
        if entry["destination"].rstrip("/") == "/dev":
            options = entry.get("options") or ()
            return not ("bind" in options or "rbind" in options or entry.get("type") == "bind")
    return True


def prepare(config, bundle, rootfs, cgroup=None, cgroupns=False, idmapped=None, own_mount_ns=True):
    """Everything before pivot_root, run by init in its new mount namespace.

    idmapped: {mount index: fd of a detached idmapped tree} (linux/idmap.py), placed and closed here.
    own_mount_ns False: the config has no mount namespace, and the mounts go into the runtime's
    own below the rootfs, as runc puts them (delete takes them away: release_shared_mounts); the
    propagation of the caller's mounts is left as it is (runc would make the host's "/" a slave).
    """
    idmapped = idmapped or {}
    linux = config.get("linux") or {}
    propagation = PROPAGATION.get(linux.get("rootfsPropagation"), c.MS_SLAVE | c.MS_REC)
    try:
        if own_mount_ns:
            # Our mounts must never propagate back to the host's namespace, and pivot_root refuses
            # a shared parent mount: everything is a slave until finalize() applies a shared
            # rootfsPropagation to the new root.
            mount(None, "/", None, (propagation if not propagation & c.MS_SHARED else c.MS_SLAVE) | c.MS_REC)
            # A bind onto itself makes the rootfs a mount point, which pivot_root requires.
            mount(rootfs, rootfs, None, c.MS_BIND | c.MS_REC)
    except OSError as e:
        raise StepError("prepare rootfs", rootfs, e) from None
    root_fd = os.open(rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        config_mounts = config.get("mounts") or ()
        for i, entry in enumerate(config_mounts):
            tree_fd = idmapped.pop(i, None)
            try:
                mounts.mount_one(root_fd, bundle, entry, cgroup, cgroupns, tree_fd, linux.get("mountLabel"))
            finally:
                if tree_fd is not None:
                    os.close(tree_fd)
        if _needs_default_devices(config_mounts):
            devices.setup_dev(root_fd, linux.get("devices"))
        elif linux.get("devices"):
            for device in linux["devices"]:
                devices.create_device(root_fd, device)
        cwd = (config.get("process") or {}).get("cwd") or "/"
        try:
            os.close(mkdir_all(root_fd, cwd))
        except OSError as e:
            raise StepError("create cwd", cwd, e) from None
    finally:
        os.close(root_fd)


def enter(rootfs, no_pivot=False, own_mount_ns=True):
    """Make rootfs the process's "/"; the old root is detached so nothing of the host remains
    (without a mount namespace of its own a chroot is all there is, as under runc)."""
    try:
        if not own_mount_ns:
            os.chdir(rootfs)
            chroot(".")
        elif no_pivot:
            _detach_host_proc_and_sys(rootfs)
            os.chdir(rootfs)
            mount(rootfs, "/", None, c.MS_MOVE)
            chroot(".")
        else:
            old_root = os.open("/", os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
            new_root = os.open(rootfs, os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
            try:
                # pivot_root(".", ".") stacks the old root on top of the new one; then we detach it.
                os.fchdir(new_root)
                pivot_root(".", ".")
                os.fchdir(old_root)
                mount(None, ".", None, c.MS_SLAVE | c.MS_REC)
                umount2(".", c.MNT_DETACH)
            finally:
                os.close(old_root)
                os.close(new_root)
        os.chdir("/")
    except OSError as e:
        step = "chroot" if not own_mount_ns else "move rootfs" if no_pivot else "pivot_root"
        raise StepError(step, rootfs, e) from None


def _detach_host_proc_and_sys(rootfs):
    """Without pivot_root the host's own /proc and /sys stay in the container's mount namespace
    under the chroot, and a fully visible procfs there lets a container with CAP_SYS_ADMIN in a user
    namespace mount a fresh, unmasked /proc (the kernel's mount_too_revealing check passes). As
    runc does, every full proc and sysfs mount outside the rootfs is detached first (a slave first,
    so the unmount does not propagate to the host), or covered with a tmpfs where that is refused."""
    import errno
    from pyrunc.cgroups.mountinfo import parse_mountinfo
    with open("/proc/self/mountinfo") as f:
        mounts = parse_mountinfo(f.read())
    inside = rootfs.rstrip("/") + "/"
    for root, mountpoint, fstype, _ in mounts:
        if root != "/" or fstype not in ("proc", "sysfs") or mountpoint == rootfs or mountpoint.startswith(inside):
            continue
        try:
            mount(None, mountpoint, None, c.MS_SLAVE | c.MS_REC)
        except FileNotFoundError:
            continue  # under a mount detached already
        try:
            umount2(mountpoint, c.MNT_DETACH)
        except OSError as e:
            if e.errno not in (errno.EINVAL, errno.EPERM):
                raise
            mount("tmpfs", mountpoint, "tmpfs", 0)


def finalize(config):
    """After pivot_root: the read-only mounts that were writable while the rootfs was built
    (mounts.read_only_later), masked and read-only paths, root propagation, read-only rootfs."""
    linux = config.get("linux") or {}
    from pyrunc.linux import masks
    root_fd = os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for entry in config.get("mounts") or ():
            flags = mounts.read_only_later(entry)
            if flags is not None:
                mounts.make_read_only(root_fd, entry, flags)
        masks.mask_paths(root_fd, linux.get("maskedPaths") or ())
        masks.readonly_paths(root_fd, linux.get("readonlyPaths") or ())
    finally:
        os.close(root_fd)
    propagation = linux.get("rootfsPropagation")
    try:
        if propagation:
            mount(None, "/", None, PROPAGATION[propagation])
        if (config.get("root") or {}).get("readonly"):
            mounts.remount_bind("/", c.MS_RDONLY, "/")
    except OSError as e:
        raise StepError("remount rootfs", "/", e) from None


def release_shared_mounts(rootfs):
    """Unmount what a container without a mount namespace of its own mounted below its rootfs in
    the runtime's namespace (config mounts, /dev's nodes, /dev/console): at delete, and after a
    failed create. runc leaves them mounted. The rootfs mount itself is the caller's."""
    import errno
    from pyrunc.cgroups.mountinfo import parse_mountinfo, read_mountinfo
    inside = rootfs.rstrip("/") + "/"
    below = [m[1] for m in parse_mountinfo(read_mountinfo()) if m[1].startswith(inside)]
    try:
        root_fd = os.open(rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    try:
        for mountpoint in reversed(below):  # the last mounted first: children before parents
            try:
                # Resolved inside the rootfs, the container's to change: a symlink swapped in for
                # a parent directory cannot turn this into an unmount of the host's.
                fd = open_in_root(root_fd, mountpoint[len(inside):])
            except OSError:
                continue  # gone with a parent already
            try:
                umount2(fd_path(fd), c.MNT_DETACH)
            except OSError as e:
                if e.errno != errno.EINVAL:  # EINVAL: no longer a mount point
                    raise StepError("unmount", mountpoint, e) from None
            finally:
                os.close(fd)
    finally:
        os.close(root_fd)


__all__ = ["prepare", "enter", "finalize", "fd_path", "open_in_root"]
