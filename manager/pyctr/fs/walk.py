"""An iterative, fd-based walk of a directory tree: never follows a symlink, never re-resolves a
path from the top (a tree being changed under it cannot redirect it), no recursion (trees can be
thousands of levels deep; one fd is open per level, so the soft fd limit is raised to the hard one)."""
import os
import stat

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class Entry:
    """One name in the tree: parent_fd (open while the entry is current), name, path (relative,
    '/'-joined), st (lstat); fd for a directory (open until its "leave" event)."""
    __slots__ = ("parent_fd", "name", "path", "st", "fd")

    def __init__(self, parent_fd, name, path, st, fd=None):
        self.parent_fd, self.name, self.path, self.st, self.fd = parent_fd, name, path, st, fd

    @property
    def is_dir(self):
        return stat.S_ISDIR(self.st.st_mode)


def raise_fd_limit():
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            pass


def walk(dir_fd, prefix="", skip_dev=None):
    """Yield ("enter", Entry) for each directory (before its content), ("entry", Entry) for every
    other name, ("leave", Entry) after a directory's content; names in sorted order. dir_fd itself
    is not reported. skip_dev: do not descend into directories on another device than this."""
    raise_fd_limit()
    stack = [(dir_fd, prefix, _names(dir_fd), None)]
    try:
        while stack:
            fd, path, names, owner = stack[-1]
            if not names:
                stack.pop()
                if owner is not None:
                    try:
                        yield "leave", owner
                    finally:
                        os.close(fd)
                continue
            name = names.pop()
            try:
                st = os.lstat(name, dir_fd=fd)
            except FileNotFoundError:
                continue  # removed while we walk
            child_path = f"{path}/{name}" if path else name
            if not stat.S_ISDIR(st.st_mode) or (skip_dev is not None and st.st_dev != skip_dev):
                yield "entry", Entry(fd, name, child_path, st)
                continue
            try:
                child_fd = os.open(name, _DIR_FLAGS, dir_fd=fd)
            except (FileNotFoundError, NotADirectoryError):
                continue  # replaced while we walk
            entry = Entry(fd, name, child_path, st, child_fd)
            try:
                child_names = _names(child_fd)
            except BaseException:
                os.close(child_fd)
                raise
            stack.append((child_fd, child_path, child_names, entry))
            yield "enter", entry
    finally:
        for fd, _, _, owner in stack:
            if owner is not None:
                os.close(fd)


def _names(fd):
    # sorted descending: pop() from the end gives ascending order
    return sorted(os.listdir(fd), reverse=True)
