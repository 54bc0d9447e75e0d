"""Applying config.json's mounts inside the rootfs, in the order listed.

Destinations are resolved with openat2(RESOLVE_IN_ROOT) (linux/paths.py) and mounted through
/proc/self/fd/N, so a symlink in the container's rootfs can never redirect a mount to the host.
"""
import os
import stat

from pyrunc.errors import StepError
from pyrunc.linux import mount_options
from pyrunc.linux.paths import fd_path, make_mountpoint, open_in_root
from pyrunc.sys import consts as c
from pyrunc.sys.calls import mount, mount_setattr, move_mount


# Flags the kernel locks on mounts copied into a less privileged mount namespace (MNT_LOCK_*): a
# remount inside a user namespace must keep them or it fails with EPERM.
_LOCKABLE = c.MS_RDONLY | c.MS_NOSUID | c.MS_NODEV | c.MS_NOEXEC
_ATIME = c.MS_NOATIME | c.MS_RELATIME | c.MS_STRICTATIME
_CLEAR_NAMES = ((c.MS_RDONLY, "rw"), (c.MS_NOSUID, "suid"), (c.MS_NODEV, "dev"), (c.MS_NOEXEC, "exec"))


def _mount_flags(statvfs_flags):
    """statvfs f_flag -> the MS_ flags of the lockable attributes (equal bits, except relatime)."""
    flags = statvfs_flags & (_LOCKABLE | c.MS_NOATIME | c.MS_NODIRATIME)
    if statvfs_flags & c.ST_RELATIME:
        flags |= c.MS_RELATIME
    elif not statvfs_flags & c.MS_NOATIME:
        flags |= c.MS_STRICTATIME
    return flags


def locked_retry_flags(flags, cleared, source_flags):
    """The flags to retry a refused bind remount with: ours plus the source mount's lockable ones
    (runc does the same). A locked flag the config explicitly clears is an error, not dropped."""
    for flag, name in _CLEAR_NAMES:
        if source_flags & flag and cleared & flag:
            raise ValueError(f"option {name!r} clears a flag locked on the source mount")
    if flags & _ATIME and (flags & _ATIME) != (source_flags & _ATIME):
        raise ValueError("the atime option differs from the source mount's, which is locked")
    return (flags & ~_ATIME) | (source_flags & (_LOCKABLE | _ATIME | c.MS_NODIRATIME))


def remount_bind(target, flags, where, cleared=0):
    """MS_BIND|MS_REMOUNT the mount at target (a path) with flags; in a user namespace the source's
    locked nosuid/nodev/noexec/ro/atime flags are kept (a retry adds them) rather than failing."""
    try:
        mount(None, target, None, c.MS_BIND | c.MS_REMOUNT | flags)
    except PermissionError:
        try:
            retry = locked_retry_flags(flags, cleared, _mount_flags(os.statvfs(target).f_flag))
        except ValueError as why:
            raise StepError("remount bind mount at", where, f"operation not permitted ({why})") from None
        if retry == flags:
            raise
        mount(None, target, None, c.MS_BIND | c.MS_REMOUNT | retry)


def _remount_bind(root_fd, destination, flags, cleared=0):
    fd = open_in_root(root_fd, destination)
    try:
        remount_bind(fd_path(fd), flags, destination, cleared)
    finally:
        os.close(fd)


def _finish(root_fd, destination, opts):
    """Propagation and recursive attributes apply to the mount now on top of destination."""
    if not opts.propagation and not (opts.attr_set or opts.attr_clr):
        return
    fd = open_in_root(root_fd, destination)
    try:
        for propagation in opts.propagation:
            mount(None, fd_path(fd), None, propagation)
        if opts.attr_set or opts.attr_clr:
            mount_setattr(fd, "", 0x1000 | c.AT_RECURSIVE, opts.attr_set, opts.attr_clr)  # AT_EMPTY_PATH
    finally:
        os.close(fd)


def bind(root_fd, source, destination, opts):
    try:
        st = os.stat(source)
    except OSError as e:
        raise StepError(f"mount {source} to rootfs at", destination, e) from None
    fd = make_mountpoint(root_fd, destination, stat.S_ISDIR(st.st_mode))
    try:
        mount(source, fd_path(fd), None, c.MS_BIND | (opts.flags & c.MS_REC))
    finally:
        os.close(fd)
    # MS_BIND ignores per-mount flags on the first call: they need a remount of the new mount.
    extra = opts.flags & mount_options.BIND_REMOUNT_FLAGS
    if extra:
        _remount_bind(root_fd, destination, extra, opts.cleared)


def place_tree(root_fd, tree_fd, destination, opts):
    """Attach a detached mount (an idmapped tree from linux/idmap.py) at destination in the rootfs."""
    st = os.fstat(tree_fd)
    fd = make_mountpoint(root_fd, destination, stat.S_ISDIR(st.st_mode))
    try:
        move_mount(tree_fd, "", fd, "", c.MOVE_MOUNT_F_EMPTY_PATH | c.MOVE_MOUNT_T_EMPTY_PATH,
                   "idmapped mount", destination)
    finally:
        os.close(fd)
    extra = opts.flags & mount_options.BIND_REMOUNT_FLAGS
    if extra:
        _remount_bind(root_fd, destination, extra, opts.cleared)


def read_only_later(entry, opts=None):
    """The per-mount flags to make a mount read-only with at the end of the rootfs setup, or None.

    A read-only tmpfs, and /dev whatever its type, are mounted writable first, as runc does: /dev
    gets device nodes, devpts and /dev/console after it is mounted, and any tmpfs may get mount
    points for later mounts; rootfs.finalize() then makes them read-only (a bind remount)."""
    mount_type = entry.get("type") or ""
    opts = opts or mount_options.parse(entry.get("options"), mount_type)
    if opts.is_bind or not opts.flags & c.MS_RDONLY:
        return None
    import posixpath
    if mount_type != "tmpfs" and posixpath.normpath("/" + entry["destination"]) != "/dev":
        return None
    return opts.flags & mount_options.BIND_REMOUNT_FLAGS


def make_read_only(root_fd, entry, flags):
    try:
        _remount_bind(root_fd, entry["destination"], flags)
    except OSError as e:
        raise StepError("remount read-only", entry["destination"], _strip_fd_path(e)) from None


def mount_one(root_fd, bundle, entry, cgroup=None, cgroupns=False, tree_fd=None, mount_label=None):
    destination = entry["destination"]
    mount_type = entry.get("type") or ""
    source = entry.get("source") or ""
    opts = mount_options.parse(entry.get("options"), mount_type)
    if read_only_later(entry, opts) is not None:
        opts.flags &= ~c.MS_RDONLY
    try:
        if mount_type in ("proc", "sysfs") and not opts.is_bind and tree_fd is None:
            _refuse_non_directory(root_fd, destination, mount_type)
        if tree_fd is not None:
            place_tree(root_fd, tree_fd, destination, opts)
        elif mount_type == "cgroup":
            _mount_cgroup(root_fd, destination, opts, cgroup, cgroupns)
        elif opts.is_bind:
            if not os.path.isabs(source):
                source = os.path.join(bundle, source)
            bind(root_fd, source, destination, opts)
        else:
            data = opts.data
            if mount_label:
                from pyrunc.linux.lsm import mount_data_with_label
                data = mount_data_with_label(mount_type, data, mount_label)
            if mount_type == "tmpfs" and "tmpcopyup" in opts.extensions:
                _mount_tmpfs_copyup(root_fd, destination, source, opts, data)
            else:
                fd = make_mountpoint(root_fd, destination, True)
                try:
                    mount(source or mount_type, fd_path(fd), mount_type, opts.flags & ~c.MS_REMOUNT, data)
                finally:
                    os.close(fd)
            if mount_label and mount_type == "mqueue":
                from pyrunc.linux.lsm import label_mqueue
                fd = open_in_root(root_fd, destination)  # the new mount's root, not what it covers
                try:
                    label_mqueue(fd_path(fd), mount_label)
                finally:
                    os.close(fd)
        _finish(root_fd, destination, opts)
    except StepError:
        raise
    except OSError as e:
        what = f"{source} ({mount_type})" if mount_type and not opts.is_bind else source or mount_type
        raise StepError(f"mount {what} to rootfs at", destination, _strip_fd_path(e)) from None


def _refuse_non_directory(root_fd, destination, mount_type):
    """proc and sysfs go on a real directory or nowhere: a symlink (or file) in the image at their
    destination is refused, not followed, as runc refuses it (a mount through a planted link was
    the way out of several runtimes)."""
    import posixpath
    parent, name = posixpath.split(posixpath.normpath("/" + destination))
    if not name:
        return
    try:
        parent_fd = open_in_root(root_fd, parent)
    except FileNotFoundError:
        return  # created by the mount below, as a directory
    try:
        st = os.lstat(name, dir_fd=parent_fd)
    except FileNotFoundError:
        return
    finally:
        os.close(parent_fd)
    if not stat.S_ISDIR(st.st_mode):
        raise StepError(f"mount {mount_type} to rootfs at", destination,
                        f"filesystem \"{mount_type}\" must be mounted on ordinary directory")


def _mount_tmpfs_copyup(root_fd, destination, source, opts, data):
    """A tmpfs that starts with a copy of the directory it covers (linux/tmpcopyup.py); mounted
    writable for the copy, made read-only after when asked."""
    from pyrunc.linux import tmpcopyup
    fd = make_mountpoint(root_fd, destination, True)
    try:
        covered = tmpcopyup.open_covered(fd)
        try:
            flags = opts.flags & ~c.MS_REMOUNT
            mount(source or "tmpfs", fd_path(fd), "tmpfs", flags & ~c.MS_RDONLY, data)
            new_root = open_in_root(root_fd, destination, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                try:
                    tmpcopyup.copy_tree(covered, new_root)
                except OSError as e:
                    raise StepError("tmpcopyup into tmpfs at", destination, e) from None
                if flags & c.MS_RDONLY:
                    # Through the new mount's root: fd names the directory it covers.
                    mount(None, fd_path(new_root), None, c.MS_REMOUNT | flags, data)
            finally:
                os.close(new_root)
        finally:
            os.close(covered)
    finally:
        os.close(fd)


def _strip_fd_path(error):
    """Name the container path, not /proc/self/fd/N, in messages."""
    if getattr(error, "path2", None) and str(error.path2).startswith("/proc/self/fd/"):
        error.path2 = None
    return error


def _mount_cgroup(root_fd, destination, opts, cgroup, cgroupns):
    if cgroup is None:
        raise StepError("mount cgroup at", destination, "the container has no cgroup")
    flags = opts.flags & ~(c.MS_BIND | c.MS_REC | c.MS_REMOUNT)
    plan = cgroup.mount_plan(cgroupns)
    if len(plan) == 1 and plan[0][1] == "cgroup2" and plan[0][0] == "":
        _, fstype, data, host = plan[0]
        _mount_hierarchy(root_fd, destination, fstype, data, host, flags, cgroupns)
        return
    # v1 and hybrid: a tmpfs holding one directory per hierarchy, made read-only last if asked.
    fd = make_mountpoint(root_fd, destination, True)
    try:
        mount("tmpfs", fd_path(fd), "tmpfs", flags & ~c.MS_RDONLY, "mode=755")
    finally:
        os.close(fd)
    for subdir, fstype, data, host in plan:
        target = destination.rstrip("/") + "/" + subdir
        if fstype == "symlink":
            parent = open_in_root(root_fd, destination)
            try:
                os.symlink(data, subdir, dir_fd=parent)
            except FileExistsError:
                pass
            finally:
                os.close(parent)
            continue
        _mount_hierarchy(root_fd, target, fstype, data, host, flags, cgroupns)
    if flags & c.MS_RDONLY:
        fd = open_in_root(root_fd, destination)
        try:
            mount(None, fd_path(fd), None, c.MS_REMOUNT | flags, "mode=755")
        finally:
            os.close(fd)


def _mount_hierarchy(root_fd, target, fstype, data, host, flags, cgroupns):
    if cgroupns:
        # In the container's cgroup namespace a fresh mount shows its own cgroup as the root.
        fd = make_mountpoint(root_fd, target, True)
        try:
            mount(fstype, fd_path(fd), fstype, flags, data or None)
        finally:
            os.close(fd)
    else:
        opts = mount_options.MountOptions()
        opts.flags = c.MS_BIND | c.MS_REC | flags
        bind(root_fd, host, target, opts)
