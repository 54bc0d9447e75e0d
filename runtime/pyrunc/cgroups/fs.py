"""Raw access to cgroup filesystem files and directories.

Every cgroup file operation goes through here so there is one place that knows the kernel's rules:
a value must reach the kernel in a single write(2), files must never be created (the kernel makes
them on mkdir, and O_CREAT on a missing control file would turn a clear ENOENT into EACCES), and
mkdir/rmdir are the whole lifecycle of a cgroup. Unit tests replace mkdir/rmdir here to simulate
the kernel on a plain tmpfs. Errors are the raw OSError; callers wrap them with the step they were in.
"""
import errno
import os


def read(path):
    with open(path, "rb", buffering=0) as f:
        return f.read().decode()


def write(path, value):
    # O_TRUNC as runc: a no-op on cgroupfs, and a stand-in directory then holds exactly the value.
    fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC)
    try:
        data = value.encode()
        # A cgroup file parses each write(2) on its own: a short write would split the value.
        n = os.write(fd, data)
        if n != len(data):
            raise OSError(errno.EIO, f"short write ({n} of {len(data)} bytes)", path)
    finally:
        os.close(fd)


def mkdir(path):
    os.mkdir(path, 0o755)


def rmdir(path):
    os.rmdir(path)


def read_pids(procs_path):
    return [int(tok) for tok in read(procs_path).split()]


def subdirs(path):
    """Child cgroups of `path` (control files are regular files, children are directories)."""
    with os.scandir(path) as it:
        return [e.path for e in it if e.is_dir(follow_symlinks=False)]
