"""Resolving paths inside a container's rootfs without ever leaving it.

The rootfs belongs to the container, so any component may be a symlink planted to point at the
host ("/etc" -> "/", "../../.."). Every lookup goes through openat2(RESOLVE_IN_ROOT), which makes
the kernel treat the rootfs as "/" for symlinks and "..", race-free, and refuses magic links.
Callers get O_PATH fds and mount onto /proc/self/fd/N, so a symlink swapped in after the lookup
changes nothing.
"""
import errno
import os

from pyrunc.sys import consts as c
from pyrunc.sys.calls import openat2

_RESOLVE = c.RESOLVE_IN_ROOT | c.RESOLVE_NO_MAGICLINKS


def relative(path):
    """Container path -> path relative to the rootfs ("." for the root itself)."""
    parts = [p for p in path.split("/") if p and p != "."]
    return "/".join(parts) or "."


def open_in_root(root_fd, path, flags=os.O_PATH):
    return openat2(root_fd, relative(path), flags, 0, _RESOLVE)


def fd_path(fd):
    """A path the kernel resolves to exactly the object behind fd (valid while fd is open)."""
    return f"/proc/self/fd/{fd}"


_MAX_LINKS = 40  # as the kernel's own limit on symlinks followed in one lookup


def mkdir_all(root_fd, path, mode=0o755, _links=0):
    """mkdir -p inside the rootfs; returns an O_PATH fd of the final directory.

    The whole path is looked up first: most mount points exist, and then one openat2 does it
    (a walk from the root per component cost ~6 lookups per cgroup hierarchy of a v1 host). A
    missing directory is made in its parent, found the same way. A component that is a dangling
    symlink is followed inside the rootfs and its target made (runc does the same: images link
    /etc/resolv.conf and friends to paths that do not exist yet).
    """
    rel = relative(path)
    if rel == ".":
        return os.dup(root_fd)
    try:
        return openat2(root_fd, rel, os.O_PATH | os.O_DIRECTORY, 0, _RESOLVE)
    except FileNotFoundError:
        pass
    parent_path = rel.rpartition("/")[0] or "."
    name = rel.rpartition("/")[2]
    parent = mkdir_all(root_fd, parent_path, mode, _links)
    try:
        target = _create_or_dangling(parent, parent_path, name,
                                     lambda name, parent: os.mkdir(name, mode, dir_fd=parent))
    finally:
        os.close(parent)
    if target is not None:
        _count(_links, path)
        os.close(mkdir_all(root_fd, target, mode, _links + 1))
    return openat2(root_fd, rel, os.O_PATH | os.O_DIRECTORY, 0, _RESOLVE)


def make_file(root_fd, path, mode=0o644, _links=0):
    """Ensure a regular file exists at path (a bind-mount target); returns an O_PATH fd."""
    parent_path, _, name = relative(path).rpartition("/")
    parent_path = parent_path or "."
    os.close(mkdir_all(root_fd, parent_path))

    def create(name, parent):
        # O_EXCL|O_NOFOLLOW: never create through (or open) a symlink the container planted.
        os.close(os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode,
                         dir_fd=parent))

    try:
        return openat2(root_fd, relative(path), os.O_PATH, 0, _RESOLVE)
    except FileNotFoundError:
        parent = openat2(root_fd, parent_path, os.O_PATH | os.O_DIRECTORY, 0, _RESOLVE)
        try:
            target = _create_or_dangling(parent, parent_path, name, create)
        finally:
            os.close(parent)
    if target is not None:
        _count(_links, path)
        os.close(make_file(root_fd, target, mode, _links + 1))
    return openat2(root_fd, relative(path), os.O_PATH, 0, _RESOLVE)


def _create_or_dangling(parent, parent_path, name, create):
    """Create name in the directory fd parent (parent_path in the rootfs); if a symlink already
    sits there, return its target as a rootfs path."""
    try:
        create(name, parent)
        return None
    except FileExistsError:
        pass  # raced with someone else, or a dangling symlink
    try:
        link = os.readlink(name, dir_fd=parent)
    except OSError:
        return None  # not a symlink: the caller's next open decides
    # An absolute target is relative to the rootfs (RESOLVE_IN_ROOT's meaning of "/").
    return link if link.startswith("/") else (parent_path + "/" + link)


def _count(links, path):
    if links >= _MAX_LINKS:
        raise OSError(errno.ELOOP, "too many levels of symbolic links", path)


def make_mountpoint(root_fd, path, directory=True):
    try:
        return mkdir_all(root_fd, path) if directory else make_file(root_fd, path)
    except NotADirectoryError:
        raise OSError(errno.ENOTDIR, "not a directory", path) from None
