"""linux.maskedPaths and linux.readonlyPaths, applied after pivot_root inside the container."""
import os
import stat

from pyrunc.errors import StepError
from pyrunc.linux.paths import fd_path, open_in_root
from pyrunc.sys import consts as c
from pyrunc.sys.calls import mount


def mask_paths(root_fd, paths):
    """Directories get an empty read-only tmpfs, files /dev/null: both read as nothing."""
    for path in paths:
        try:
            fd = open_in_root(root_fd, path)
        except (FileNotFoundError, NotADirectoryError):
            continue
        except OSError as e:
            raise StepError("mask path", path, e) from None
        try:
            if stat.S_ISDIR(os.fstat(fd).st_mode):
                mount("tmpfs", fd_path(fd), "tmpfs", c.MS_RDONLY, "mode=755")
            else:
                mount("/dev/null", fd_path(fd), None, c.MS_BIND)
        except OSError as e:
            raise StepError("mask path", path, e) from None
        finally:
            os.close(fd)


def readonly_paths(root_fd, paths):
    for path in paths:
        try:
            fd = open_in_root(root_fd, path)
        except (FileNotFoundError, NotADirectoryError):
            continue
        except OSError as e:
            raise StepError("make read-only", path, e) from None
        try:
            mount(fd_path(fd), fd_path(fd), None, c.MS_BIND | c.MS_REC)
        except OSError as e:
            os.close(fd)
            raise StepError("make read-only", path, e) from None
        os.close(fd)
        fd = open_in_root(root_fd, path)  # the new bind mount, not the dentry under it
        try:
            mount(None, fd_path(fd), None, c.MS_BIND | c.MS_REMOUNT | c.MS_RDONLY | c.MS_REC
                  | c.MS_NOSUID | c.MS_NODEV | c.MS_NOEXEC)
        except OSError as e:
            raise StepError("make read-only", path, e) from None
        finally:
            os.close(fd)
