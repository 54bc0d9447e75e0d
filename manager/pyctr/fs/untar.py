"""Extract a tar stream below a directory fd, as `cp` needs it: entry names cleaned (no absolute
names, no `..`), every parent opened one component at a time without following a symlink (a
symlink planted in the destination cannot send a write elsewhere), existing files overwritten,
a directory never replaced by a file or the reverse (Docker's refusals), ownership from the
archive or forced, xattrs kept. Iterative, one fd per directory level."""
import errno
import os
import shutil
import stat
import tarfile

from pyctr.errors import PyctrError

_CHUNK = 1 << 20
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class ExtractError(PyctrError):
    pass


def _parts(name):
    if name.startswith("/"):
        name = name.lstrip("/")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ExtractError(f"archive entry {name!r} contains '..'")
    if any("\0" in p for p in parts):
        raise ExtractError(f"archive entry {name!r} contains a NUL byte")
    return parts


class Extractor:
    def __init__(self, dest_fd, owner=None):
        self.dest = dest_fd
        self.owner = owner
        self.stack = []      # [(parts, fd, member or None)] along the current directory path

    def run(self, stream):
        from pyctr.fs.walk import raise_fd_limit
        raise_fd_limit()
        try:
            with tarfile.open(fileobj=stream, mode="r|", errorlevel=2) as tf:
                for m in tf:
                    self.entry(tf, m)
        except tarfile.TarError as e:
            raise ExtractError(f"the archive is not a valid tar ({e})") from None
        finally:
            self.unwind(0)

    def unwind(self, depth):
        while len(self.stack) > depth:
            _, fd, m = self.stack.pop()
            try:
                if m is not None:
                    self.metadata(fd, m)
            finally:
                os.close(fd)

    def parent(self, parts):
        """fd of the directory parts (below dest), opened component by component."""
        # archives list a directory's entries after it: the open path is nearly always a prefix
        keep = min(len(self.stack), len(parts))
        while keep and self.stack[keep - 1][0] != parts[:keep]:
            keep -= 1
        self.unwind(keep)
        fd = self.stack[-1][1] if self.stack else self.dest
        for i in range(keep, len(parts)):
            try:
                nfd = os.open(parts[i], _DIR, dir_fd=fd)
            except FileNotFoundError:
                os.mkdir(parts[i], 0o755, dir_fd=fd)
                nfd = os.open(parts[i], _DIR, dir_fd=fd)
            except (NotADirectoryError, OSError) as e:
                if e.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise ExtractError(f"cannot write below {'/'.join(parts[:i + 1])}: it is not a directory "
                                       f"(a symbolic link is not followed)") from None
                raise
            self.stack.append((parts[:i + 1], nfd, None))
            fd = nfd
        return fd

    def entry(self, tf, m):
        parts = _parts(m.name)
        if not parts:
            if m.isdir():
                return   # the destination itself
            raise ExtractError("an archive entry names the destination itself but is not a directory")
        pfd = self.parent(parts[:-1])
        base = parts[-1]
        existing = _lstat(base, pfd)
        if m.isdir():
            if existing is not None and stat.S_ISLNK(existing.st_mode):
                raise ExtractError(f"cannot write below {'/'.join(parts)}: it is a symbolic link (not followed)")
            if existing is not None and not stat.S_ISDIR(existing.st_mode):
                raise ExtractError(f"cannot overwrite non-directory \"{'/'.join(parts)}\" with directory")
            if existing is None:
                os.mkdir(base, 0o700, dir_fd=pfd)
            fd = os.open(base, _DIR, dir_fd=pfd)
            self.stack.append((parts, fd, m))
            return
        if existing is not None:
            if stat.S_ISDIR(existing.st_mode):
                raise ExtractError(f"cannot overwrite directory \"{'/'.join(parts)}\" with non-directory")
            if not (m.isreg() and stat.S_ISREG(existing.st_mode)):
                os.unlink(base, dir_fd=pfd)
        if m.isreg():
            fd = os.open(base, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                         dir_fd=pfd)
            try:
                with os.fdopen(fd, "wb", closefd=False) as out:
                    shutil.copyfileobj(tf.extractfile(m), out, _CHUNK)
                self.metadata(fd, m)
            finally:
                os.close(fd)
        elif m.issym():
            os.symlink(m.linkname, base, dir_fd=pfd)
            self.owner_times(base, pfd, m)
        elif m.islnk():
            tparts = _parts(m.linkname)
            tfd = self._open_beneath(tparts[:-1]) if tparts else None
            if tfd is None:
                raise ExtractError(f"hard link target {m.linkname!r} is not in the archive")
            try:
                os.link(tparts[-1], base, src_dir_fd=tfd, dst_dir_fd=pfd, follow_symlinks=False)
            finally:
                os.close(tfd)
        elif m.ischr() or m.isblk() or m.isfifo():
            kind = stat.S_IFCHR if m.ischr() else stat.S_IFBLK if m.isblk() else stat.S_IFIFO
            os.mknod(base, kind | 0o600, os.makedev(m.devmajor, m.devminor) if not m.isfifo() else 0, dir_fd=pfd)
            self.owner_times(base, pfd, m)
            os.chmod(base, m.mode & 0o7777, dir_fd=pfd)
        else:
            raise ExtractError(f"archive entry {m.name!r}: unsupported type {m.type!r}")

    def _open_beneath(self, parts):
        from pyrunc.sys import calls, consts
        try:
            return calls.openat2(self.dest, "/".join(parts) or ".", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC, 0,
                                 consts.RESOLVE_BENEATH | consts.RESOLVE_NO_SYMLINKS)
        except OSError:
            return None

    def ids(self, m):
        return self.owner or (m.uid, m.gid)

    def metadata(self, fd, m):
        os.fchown(fd, *self.ids(m))
        os.fchmod(fd, m.mode & 0o7777)
        for key, value in m.pax_headers.items():
            if key.startswith("SCHILY.xattr.") and not key.startswith("SCHILY.xattr.trusted.overlay."):
                try:
                    os.setxattr(fd, key[len("SCHILY.xattr."):], value.encode("utf-8", "surrogateescape"))
                except OSError as e:
                    if e.errno not in (errno.ENOTSUP, errno.EPERM):
                        raise
        mtime = int(m.mtime * 1e9)
        os.utime(fd, ns=(mtime, mtime))

    def owner_times(self, base, pfd, m):
        os.chown(base, *self.ids(m), dir_fd=pfd, follow_symlinks=False)
        mtime = int(m.mtime * 1e9)
        os.utime(base, ns=(mtime, mtime), dir_fd=pfd, follow_symlinks=False)


def _lstat(name, dir_fd):
    try:
        return os.lstat(name, dir_fd=dir_fd)
    except FileNotFoundError:
        return None
