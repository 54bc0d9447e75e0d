"""tmpcopyup (runc's extension for tmpfs mounts): the new tmpfs starts with a copy of what it covers.

The directory is opened before the tmpfs goes on top, so the copy reads the covered tree through
that fd and writes into the new mount: no staging directory on the host. The tree is the image's,
so it is copied as data, never followed: symlinks are recreated as symlinks, device nodes, fifos
and sockets with mknod, a regular file is opened O_NOFOLLOW|O_NONBLOCK and checked to still be one;
hard links become separate copies (as runc's copy does). Owner, mode and times are kept; the root of
the tmpfs keeps what its mount options gave it.
"""
import os
import stat

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def open_covered(path_fd):
    """A readable fd of the directory an O_PATH fd names, valid after something is mounted on it."""
    return os.open(f"/proc/self/fd/{path_fd}", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)


def copy_tree(src, dst):
    """Copy the contents of directory fd src into directory fd dst."""
    with os.scandir(src) as entries:
        names = [entry.name for entry in entries]
    for name in names:
        st = os.stat(name, dir_fd=src, follow_symlinks=False)
        kind = stat.S_IFMT(st.st_mode)
        if kind == stat.S_IFDIR:
            os.mkdir(name, 0o700, dir_fd=dst)
            sub_src = os.open(name, _DIR, dir_fd=src)
            try:
                sub_dst = os.open(name, _DIR, dir_fd=dst)
                try:
                    copy_tree(sub_src, sub_dst)
                finally:
                    os.close(sub_dst)
            finally:
                os.close(sub_src)
        elif kind == stat.S_IFREG:
            _copy_file(src, dst, name)
        elif kind == stat.S_IFLNK:
            os.symlink(os.readlink(name, dir_fd=src), name, dir_fd=dst)
        else:  # character and block devices, fifos, sockets
            os.mknod(name, st.st_mode, st.st_rdev, dir_fd=dst)
        os.chown(name, st.st_uid, st.st_gid, dir_fd=dst, follow_symlinks=False)
        if kind != stat.S_IFLNK:
            os.chmod(name, stat.S_IMODE(st.st_mode), dir_fd=dst)  # after chown, which clears set-id bits
        os.utime(name, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=dst, follow_symlinks=False)


def _copy_file(src, dst, name):
    fd_in = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=src)
    try:
        if not stat.S_ISREG(os.fstat(fd_in).st_mode):
            raise OSError(f"{name}: changed type while copied")
        fd_out = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                         dir_fd=dst)
        try:
            while os.sendfile(fd_out, fd_in, None, 1 << 24):
                pass
        finally:
            os.close(fd_out)
    finally:
        os.close(fd_in)
