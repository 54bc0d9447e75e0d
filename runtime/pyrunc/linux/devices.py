"""/dev inside the container: the default device nodes, linux.devices, and the standard links."""
import os
import stat

from pyrunc.errors import StepError
from pyrunc.linux.paths import mkdir_all, relative

# runtime-spec: these MUST exist (config-linux.md, "Default Devices").
DEFAULT_DEVICES = (
    {"path": "/dev/null", "type": "c", "major": 1, "minor": 3},
    {"path": "/dev/zero", "type": "c", "major": 1, "minor": 5},
    {"path": "/dev/full", "type": "c", "major": 1, "minor": 7},
    {"path": "/dev/random", "type": "c", "major": 1, "minor": 8},
    {"path": "/dev/urandom", "type": "c", "major": 1, "minor": 9},
    {"path": "/dev/tty", "type": "c", "major": 5, "minor": 0},
)

LINKS = (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
         ("stderr", "/proc/self/fd/2"), ("ptmx", "pts/ptmx"))

_TYPES = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}


def create_device(root_fd, device):
    path = device["path"]
    parent_path, _, name = relative(path).rpartition("/")
    kind = _TYPES[device.get("type", "c")]
    mode = kind | (device.get("fileMode", 0o666) & 0o7777)
    number = os.makedev(device.get("major", 0), device.get("minor", 0)) if kind != stat.S_IFIFO else 0
    try:
        parent = mkdir_all(root_fd, parent_path or ".")
    except OSError as e:
        raise StepError("create device", path, e) from None
    try:
        try:
            os.mknod(name, mode, number, dir_fd=parent)
        except PermissionError:
            # In a user namespace mknod is never allowed: bind the host's node instead (runc too).
            _bind_from_host(parent, name, path)
            return
        except FileExistsError:
            st = os.stat(name, dir_fd=parent, follow_symlinks=False)
            if stat.S_IFMT(st.st_mode) != kind or (kind != stat.S_IFIFO and st.st_rdev != number):
                raise StepError("create device", path, "a different file already exists there") from None
            return
        os.chmod(name, mode & 0o7777, dir_fd=parent)
        os.chown(name, device.get("uid", 0), device.get("gid", 0), dir_fd=parent, follow_symlinks=False)
    except StepError:
        raise
    except OSError as e:
        raise StepError("create device", path, e) from None
    finally:
        os.close(parent)


def _bind_from_host(parent, name, path):
    from pyrunc.linux.paths import fd_path
    from pyrunc.sys import consts as c
    from pyrunc.sys.calls import mount
    try:
        os.close(os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644,
                         dir_fd=parent))
    except FileExistsError:
        pass
    fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise StepError("bind device", path, "the mount point in the rootfs is not a regular file")
        mount(path, fd_path(fd), None, c.MS_BIND)
    finally:
        os.close(fd)


def setup_dev(root_fd, devices):
    """Default devices, then linux.devices, then /dev/fd, stdio links and /dev/ptmx."""
    for device in DEFAULT_DEVICES:
        create_device(root_fd, device)
    for device in devices or ():
        create_device(root_fd, device)
    dev = mkdir_all(root_fd, "/dev")
    try:
        links = LINKS + ((("core", "/proc/kcore"),) if os.path.exists("/proc/kcore") else ())
        for name, target in links:
            if name == "ptmx":
                # A /dev/ptmx node from the image would reach the host's pty instance: replace it.
                try:
                    if not stat.S_ISLNK(os.stat(name, dir_fd=dev, follow_symlinks=False).st_mode):
                        os.unlink(name, dir_fd=dev)
                except FileNotFoundError:
                    pass
            try:
                os.symlink(target, name, dir_fd=dev)
            except FileExistsError:
                pass
    except OSError as e:
        raise StepError("create /dev links in", "/dev", e) from None
    finally:
        os.close(dev)
