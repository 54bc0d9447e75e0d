"""Remove a directory tree of any depth: iterative and fd-based (shutil.rmtree recurses, and a
container can make a tree deeper than Python's recursion limit), never following a symlink."""
import os

from pyctr.fs.walk import walk


def remove_tree(path):
    """Remove path and everything below it; what is already gone is fine."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    except (NotADirectoryError, OSError):
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        return
    try:
        for kind, e in walk(fd):
            if kind == "entry":
                _quiet(os.unlink, e.name, dir_fd=e.parent_fd)
            elif kind == "leave":
                _quiet(os.rmdir, e.name, dir_fd=e.parent_fd)
    finally:
        os.close(fd)
    _quiet(os.rmdir, path)


def _quiet(fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
    except FileNotFoundError:
        pass
