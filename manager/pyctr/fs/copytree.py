"""Copy a directory tree between two directory fds, as Docker's volume copy-up does: owners,
modes, xattrs (not overlayfs' own), times and hard links kept; symlinks copied as symlinks, never
followed; device nodes and fifos recreated; sockets skipped."""
import errno
import os
import stat

from pyctr.fs.walk import walk

_CHUNK = 1 << 20
_SKIP_XATTR = ("trusted.overlay.",)


def copy_tree(src_fd, dst_fd):
    """Copy the content of the directory src_fd into the (empty) directory dst_fd."""
    links = {}        # (dev, ino) of a multiply-linked source -> its copy's path below dst_fd
    parents = [dst_fd]
    try:
        for kind, e in walk(src_fd):
            if kind == "leave":
                fd = parents.pop()
                copy_meta(e.fd, fd, e.st)
                os.close(fd)
                continue
            pfd = parents[-1]
            mode = e.st.st_mode
            if kind == "enter":
                os.mkdir(e.name, 0o700, dir_fd=pfd)
                parents.append(os.open(e.name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                                       dir_fd=pfd))
            elif stat.S_ISREG(mode):
                key = (e.st.st_dev, e.st.st_ino)
                if e.st.st_nlink > 1 and key in links:
                    os.link(links[key], e.name, src_dir_fd=dst_fd, dst_dir_fd=pfd, follow_symlinks=False)
                    continue
                _copy_file(e, pfd)
                if e.st.st_nlink > 1:
                    links[key] = e.path
            elif stat.S_ISLNK(mode):
                os.symlink(os.readlink(e.name, dir_fd=e.parent_fd), e.name, dir_fd=pfd)
                os.chown(e.name, e.st.st_uid, e.st.st_gid, dir_fd=pfd, follow_symlinks=False)
                os.utime(e.name, ns=(e.st.st_atime_ns, e.st.st_mtime_ns), dir_fd=pfd, follow_symlinks=False)
            elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode):
                os.mknod(e.name, mode, e.st.st_rdev, dir_fd=pfd)
                os.chown(e.name, e.st.st_uid, e.st.st_gid, dir_fd=pfd, follow_symlinks=False)
                os.chmod(e.name, stat.S_IMODE(mode), dir_fd=pfd)
                os.utime(e.name, ns=(e.st.st_atime_ns, e.st.st_mtime_ns), dir_fd=pfd, follow_symlinks=False)
    finally:
        for fd in parents[1:]:
            os.close(fd)


def _copy_file(e, pfd):
    src = os.open(e.name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=e.parent_fd)
    try:
        st = os.fstat(src)
        if (st.st_dev, st.st_ino) != (e.st.st_dev, e.st.st_ino):
            raise OSError(errno.EAGAIN, f"{e.path} changed while being copied")
        dst = os.open(e.name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                      dir_fd=pfd)
        try:
            _copy_data(src, dst, st.st_size)
            copy_meta(src, dst, st)
        finally:
            os.close(dst)
    finally:
        os.close(src)


def _copy_data(src, dst, size):
    try:
        left = size
        while left > 0:
            n = os.copy_file_range(src, dst, min(left, 1 << 30))
            if n == 0:
                break
            left -= n
        return
    except OSError as e:
        if e.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
            raise
    os.lseek(src, 0, os.SEEK_SET)
    os.lseek(dst, 0, os.SEEK_SET)
    os.ftruncate(dst, 0)
    while True:
        chunk = os.read(src, _CHUNK)
        if not chunk:
            break
        view = memoryview(chunk)
        while view:
            view = view[os.write(dst, view):]


def copy_meta(src_fd, dst_fd, st):
    """Owner, mode (after chown: it clears setuid), xattrs and times from src_fd/st to dst_fd."""
    os.fchown(dst_fd, st.st_uid, st.st_gid)
    os.fchmod(dst_fd, stat.S_IMODE(st.st_mode))
    for name, value in read_xattrs(src_fd):
        try:
            os.setxattr(dst_fd, name, value)
        except OSError as e:
            if e.errno not in (errno.ENOTSUP, errno.EPERM):
                raise
    os.utime(dst_fd, ns=(st.st_atime_ns, st.st_mtime_ns))


def read_xattrs(fd):
    """[(name, value)] of an open file, overlayfs' own attributes left out."""
    try:
        names = os.listxattr(fd)
    except OSError as e:
        if e.errno in (errno.ENOTSUP, errno.EPERM):
            return []
        raise
    out = []
    for name in sorted(names):
        if name.startswith(_SKIP_XATTR):
            continue
        try:
            out.append((name, os.getxattr(fd, name)))
        except OSError as e:
            if e.errno not in (errno.ENODATA, errno.ENOTSUP, errno.EPERM):
                raise
    return out
