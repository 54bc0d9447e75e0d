"""Write a directory tree (by fd, never following a symlink) as a PAX tar, as Docker's archive
package does: directories named with a trailing '/', hard links as links to the first name,
xattrs as SCHILY.xattr records (overlayfs' own left out), whole-second mtimes. With overlay=True the
tree is an overlay upper dir and its whiteouts become `.wh.NAME` entries and opaque directories get
a `.wh..wh..opq` entry (Docker's OverlayWhiteoutFormat), as image layers carry them."""
import errno
import os
import stat
import tarfile

from pyctr.fs.copytree import read_xattrs
from pyctr.fs.walk import walk

WHITEOUT_PREFIX = ".wh."
OPAQUE = ".wh..wh..opq"
OPAQUE_XATTR = "trusted.overlay.opaque"
_CHUNK = 1 << 20


class TarWriter:
    def __init__(self, out):
        self.tf = tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT, encoding="utf-8")
        self.links = {}
        self.count = 0

    def close(self):
        try:
            self.tf.close()
        except BaseException:
            # a reader gone (`| head`): tarfile's stream would retry the write when collected and
            # print a second traceback; it is over
            self.tf.fileobj.closed = True
            self.tf.closed = True
            raise

    def add_tree(self, dir_fd, prefix="", skip=None, overlay=False, owner=None, root_entry=None):
        """Every entry below dir_fd, named prefix/relative path. root_entry: (name, stat) for an
        entry of dir_fd itself first (cp of a directory). skip(path, st) -> True leaves an entry out
        (and what is below a directory). owner: (uid, gid) for every entry instead of the file's."""
        if root_entry is not None:
            self.add(dir_fd, None, root_entry[0], root_entry[1], owner, overlay)
        skipped = []
        for kind, e in walk(dir_fd, skip_dev=os.fstat(dir_fd).st_dev):
            if kind == "leave":
                continue
            name = f"{prefix}/{e.path}" if prefix else e.path
            if skipped and any(name.startswith(s + "/") for s in skipped):
                continue
            if skip is not None and skip("/" + e.path, e.st):
                if e.is_dir:
                    skipped.append(name)
                continue
            self.add(e.fd if e.is_dir else e.parent_fd, None if e.is_dir else e.name, name, e.st, owner, overlay)

    def add(self, fd, name, arcname, st, owner=None, overlay=False):
        """One entry: fd is the entry's own fd (name None: a directory or an open regular file) or
        its parent's (name its name)."""
        mode = st.st_mode
        info = tarfile.TarInfo(arcname)
        info.mtime = int(st.st_mtime)
        info.mode = stat.S_IMODE(mode)
        info.uid, info.gid = owner or (st.st_uid, st.st_gid)
        if overlay and stat.S_ISCHR(mode) and st.st_rdev == 0:
            head, _, base = arcname.rpartition("/")
            info.name = f"{head}/{WHITEOUT_PREFIX}{base}" if head else WHITEOUT_PREFIX + base
            info.type, info.mode = tarfile.REGTYPE, 0o600
            self._write(info)
            return
        if stat.S_ISDIR(mode):
            info.type = tarfile.DIRTYPE
            info.name = arcname.rstrip("/") + "/"
            xattrs = self._xattrs(fd, name)
            self._pax(info, xattrs)
            self._write(info)
            if overlay and _opaque(fd):
                opq = tarfile.TarInfo(info.name + OPAQUE)
                opq.mode, opq.mtime, opq.uid, opq.gid = info.mode, info.mtime, info.uid, info.gid
                self._write(opq)
            return
        if stat.S_ISLNK(mode):
            info.type = tarfile.SYMTYPE
            info.linkname = os.readlink(name, dir_fd=fd)
            self._write(info)
            return
        if stat.S_ISREG(mode):
            key = (st.st_dev, st.st_ino)
            if st.st_nlink > 1 and key in self.links:
                info.type, info.linkname = tarfile.LNKTYPE, self.links[key]
                self._write(info)
                return
            self._regular(info, fd, name, st)
            if st.st_nlink > 1:
                self.links[key] = arcname
            return
        if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode):
            info.type = (tarfile.CHRTYPE if stat.S_ISCHR(mode) else
                         tarfile.BLKTYPE if stat.S_ISBLK(mode) else tarfile.FIFOTYPE)
            info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
            self._write(info)
        # sockets: not archived (Docker skips them too)

    def _regular(self, info, fd, name, st):
        try:
            src = os.dup(fd) if name is None else \
                os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=fd)
        except OSError as e:
            if e.errno in (errno.ENOENT, errno.ELOOP):
                return  # removed or replaced by a symlink while we walk: not archived
            raise
        try:
            now = os.fstat(src)
            if not stat.S_ISREG(now.st_mode):
                return
            info.type = tarfile.REGTYPE
            info.size = now.st_size
            self._pax(info, read_xattrs(src))
            self.tf.addfile(info, _Exactly(src, info.size))
            self.count += 1
        finally:
            os.close(src)

    def _xattrs(self, fd, name):
        return read_xattrs(fd) if name is None else []

    @staticmethod
    def _pax(info, xattrs):
        for key, value in xattrs:
            info.pax_headers["SCHILY.xattr." + key] = value.decode("utf-8", "surrogateescape")

    def _write(self, info):
        self.tf.addfile(info)
        self.count += 1


class _Exactly:
    """The file's content cut or zero-padded to the size the header declared (a file that grows
    or shrinks while archived must not corrupt the stream)."""

    def __init__(self, fd, size):
        self.fd, self.left = fd, size

    def read(self, n=-1):
        n = self.left if n is None or n < 0 else min(n, self.left)
        parts, want = [], n
        while want > 0:
            data = os.read(self.fd, min(want, _CHUNK))
            if not data:
                parts.append(b"\0" * want)
                break
            parts.append(data)
            want -= len(data)
        self.left -= n
        return b"".join(parts)


def _opaque(dir_fd):
    try:
        return os.getxattr(dir_fd, OPAQUE_XATTR) == b"y"
    except OSError:
        return False
