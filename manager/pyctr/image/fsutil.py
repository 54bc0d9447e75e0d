"""Filesystem helpers shared by the store's parts: tree removal and free-space checks.

Image trees are hostile input: a legal layer may nest directories a thousand levels deep, far past
Python's recursion limit (shutil.rmtree recurses, once per level, and then fails with RecursionError,
which its ignore_errors does not catch). Nothing here recurses, keeps more than two directory fds
open, follows a symbolic link, or crosses into another filesystem (a mount left below a layer dir).
"""
import errno
import os
import stat

from pyctr.errors import PyctrError

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _clear(fd):
    """Unlink the non-directories in the directory fd; returns its subdirectories' names."""
    subdirs = []
    with os.scandir(fd) as it:
        for e in it:
            try:
                if e.is_dir(follow_symlinks=False):
                    subdirs.append(e.name)
                else:
                    os.unlink(e.name, dir_fd=fd)
            except OSError:
                pass
    return subdirs


def remove_at(dir_fd, name):
    """Remove the entry name of the directory dir_fd and, if it is a directory, all below it,
    depth first with an explicit stack. Best effort, as rm -rf --one-file-system: what cannot be
    removed stays; returns True when name is gone."""
    try:
        os.unlink(name, dir_fd=dir_fd)
        return True
    except FileNotFoundError:
        return True
    except IsADirectoryError:
        pass
    except OSError as e:
        if e.errno != errno.EPERM:  # EPERM: unlink of a directory on some filesystems
            return False
    try:
        fd = os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
    except OSError:
        return False
    top = os.fstat(fd)
    # frames of the directories above the current one: (dev, ino, pending subdir names, own name)
    stack = []
    cur = [top.st_dev, top.st_ino, _clear(fd), name]
    try:
        while True:
            if cur[2]:
                child = cur[2].pop()
                try:
                    cfd = os.open(child, _DIR_FLAGS, dir_fd=fd)
                except OSError:
                    continue
                st = os.fstat(cfd)
                if st.st_dev != top.st_dev:  # a mount point: never empty someone else's filesystem
                    os.close(cfd)
                    continue
                stack.append(cur)
                os.close(fd)
                fd = cfd
                cur = [st.st_dev, st.st_ino, _clear(fd), child]
                continue
            if not stack:
                break
            parent = stack.pop()
            pfd = os.open("..", _DIR_FLAGS, dir_fd=fd)
            pst = os.fstat(pfd)
            os.close(fd)
            fd = pfd
            if (pst.st_dev, pst.st_ino) != (parent[0], parent[1]):
                return False  # the tree moved under us: stop rather than delete elsewhere
            try:
                os.rmdir(cur[3], dir_fd=fd)
            except OSError:
                pass
            cur = parent
    finally:
        os.close(fd)
    try:
        os.rmdir(name, dir_fd=dir_fd)
        return True
    except FileNotFoundError:
        return True
    except OSError:
        return False


def listdir(path):
    """The names in a directory; none if it does not exist (yet: a store is created lazily)."""
    try:
        return os.listdir(path)
    except FileNotFoundError:
        return []


def rmtree(path):
    """Remove a tree, what is there of it (see remove_at); a missing path is not an error."""
    parent, name = os.path.split(os.path.abspath(path))
    if not name:
        raise ValueError("refusing to remove /")
    try:
        pfd = os.open(parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError:
        return True
    try:
        return remove_at(pfd, name)
    finally:
        os.close(pfd)


def walk(root):
    """Depth-first, sorted walk of a tree without recursion and without following symlinks:
    yields (relative path, os.stat_result) for root itself ("") and everything below it, each
    directory before its contents."""
    pending = [("", os.lstat(root))]
    while pending:
        rel, st = pending.pop()
        yield rel, st
        if stat.S_ISDIR(st.st_mode):
            path = os.path.join(root, rel) if rel else root
            children = []
            for name in sorted(os.listdir(path), reverse=True):
                child = f"{rel}/{name}" if rel else name
                try:
                    children.append((child, os.lstat(os.path.join(root, child))))
                except FileNotFoundError:
                    continue
            pending.extend(children)


class NoSpace(PyctrError):
    """The store's filesystem lacks room for what an archive or layer declares."""


# Kept free on the store's filesystem whatever a layer declares: the store's own metadata needs room.
RESERVE = 16 << 20


def free_bytes(path):
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def ensure_free(path, need, what):
    """Refuse (NoSpace) to write need more bytes under path when its filesystem lacks them."""
    free = free_bytes(path)
    if need + RESERVE > free:
        raise NoSpace(f"{what} needs {need} bytes but the store's filesystem has {max(0, free - RESERVE)} "
                      f"bytes free ({path})")
