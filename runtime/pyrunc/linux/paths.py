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


def mkdir_all(root_fd, path, mode=0o755):
    """mkdir -p inside the rootfs; returns an O_PATH fd of the final directory."""
    parts = relative(path).split("/")
    if parts == ["."]:
        return os.dup(root_fd)
    for i in range(len(parts)):
        prefix = "/".join(parts[:i + 1])
        try:
            fd = openat2(root_fd, prefix, os.O_PATH | os.O_DIRECTORY, 0, _RESOLVE)
        except FileNotFoundError:
            parent = openat2(root_fd, "/".join(parts[:i]) or ".", os.O_PATH | os.O_DIRECTORY, 0, _RESOLVE)
            try:
                os.mkdir(parts[i], mode, dir_fd=parent)
            except FileExistsError:
                pass  # raced with someone else, or a dangling symlink: the next open decides
            finally:
                os.close(parent)
            fd = openat2(root_fd, prefix, os.O_PATH | os.O_DIRECTORY, 0, _RESOLVE)
        if i + 1 < len(parts):
            os.close(fd)
    return fd


def make_file(root_fd, path, mode=0o644):
    """Ensure a regular file exists at path (a bind-mount target); returns an O_PATH fd."""
    parent_path, _, name = relative(path).rpartition("/")
    parent = mkdir_all(root_fd, parent_path or ".")
    try:
        try:
            # O_EXCL|O_NOFOLLOW: never create through (or open) a symlink the container planted.
            os.close(os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode,
                             dir_fd=parent))
        except FileExistsError:
            pass
    finally:
        os.close(parent)
    return openat2(root_fd, relative(path), os.O_PATH, 0, _RESOLVE)


def make_mountpoint(root_fd, path, directory=True):
    try:
        return mkdir_all(root_fd, path) if directory else make_file(root_fd, path)
    except NotADirectoryError:
        raise OSError(errno.ENOTDIR, "not a directory", path) from None
