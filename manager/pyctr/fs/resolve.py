"""Paths inside a container root, resolved by the kernel as if that root were `/`
(openat2 RESOLVE_IN_ROOT): `..` and absolute symlinks stay inside, magic links are refused."""
import os


def open_in_root(root, path, flags, mode=0):
    """Open path (relative to the root, leading '/' allowed) under root (a directory path or fd);
    symlinks are followed inside the root only. Raises OSError."""
    from pyrunc.sys import calls, consts
    rel = path.lstrip("/") or "."
    own = not isinstance(root, int)
    root_fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC) if own else root
    try:
        return calls.openat2(root_fd, rel, flags | os.O_CLOEXEC, mode,
                             consts.RESOLVE_IN_ROOT | consts.RESOLVE_NO_MAGICLINKS)
    finally:
        if own:
            os.close(root_fd)


def open_parent_in_root(root, path):
    """(fd of the directory holding path's last component, that component); the parent resolved
    inside the root, the last component not resolved at all (the caller decides whether to
    follow it)."""
    parent, base = os.path.split("/" + path.strip("/"))
    if not base:
        raise IsADirectoryError(21, "the container's root has no parent", path)
    return open_in_root(root, parent, os.O_PATH | os.O_DIRECTORY), base
