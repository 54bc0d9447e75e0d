"""A layer tar from an overlay upper dir (what Docker's overlay2 driver's Diff writes): files in
name order, hard links kept, a whiteout (0:0 character device) as an empty `.wh.<name>`, an opaque
directory (trusted.overlay.opaque=y) as the directory plus `.wh..wh..opq` in it; overlayfs's own
trusted.overlay.* xattrs are left out. The archive ends with two zero blocks, as Go's archive/tar
writes it (no padding to a 10 KiB record): an empty layer is Docker's empty layer, byte for byte.

Written here because no shared commit/diff code exists on main yet (container commit, issue 15)."""
import os
import stat
import tarfile

BLOCK = 512
_CHUNK = 1 << 20
WHITEOUT_PREFIX = ".wh."
OPAQUE = ".wh..wh..opq"


def _is_opaque(path):
    try:
        return os.getxattr(path, "trusted.overlay.opaque", follow_symlinks=False) == b"y"
    except OSError:
        return False


def _xattrs(path):
    out = {}
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return out
    for n in names:
        if n.startswith("trusted.overlay.") or not (n.startswith("user.") or n.startswith("security.")):
            continue
        try:
            out["SCHILY.xattr." + n] = os.getxattr(path, n, follow_symlinks=False).decode("utf-8", "surrogateescape")
        except OSError:
            pass
    return out


class _Out:
    def __init__(self, sink):
        self.sink = sink

    def header(self, info):
        self.sink.write(info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape"))

    def data(self, path, size):
        with open(path, "rb") as f:
            left = size
            while left > 0:
                chunk = f.read(min(_CHUNK, left))
                if not chunk:
                    raise OSError(f"{path} shrank while it was being committed")
                self.sink.write(chunk)
                left -= len(chunk)
        if size % BLOCK:
            self.sink.write(b"\0" * (BLOCK - size % BLOCK))


def _info(name, st, kind):
    ti = tarfile.TarInfo(name)
    ti.type = kind
    ti.mode = stat.S_IMODE(st.st_mode)
    ti.uid, ti.gid = st.st_uid, st.st_gid
    ti.uname = ti.gname = ""
    ti.mtime = int(st.st_mtime)
    return ti


def write_layer(upper, sink):
    """Write upper's content as a layer tar to sink (has .write)."""
    out = _Out(sink)
    links = {}

    # an explicit stack of directory iterators: name order, parents first, any depth
    stack = [("", iter(sorted(os.listdir(upper))))]
    while stack:
        rel, names = stack[-1]
        name = next(names, None)
        if name is None:
            stack.pop()
            continue
        directory = os.path.join(upper, rel) if rel else upper
        path = os.path.join(directory, name)
        arc = f"{rel}/{name}" if rel else name
        st = os.lstat(path)
        mode = st.st_mode
        if stat.S_ISCHR(mode) and st.st_rdev == 0:
            ti = _info(f"{rel}/{WHITEOUT_PREFIX}{name}" if rel else WHITEOUT_PREFIX + name, st, tarfile.REGTYPE)
            ti.mode = 0
            out.header(ti)
            continue
        if stat.S_ISDIR(mode):
            ti = _info(arc + "/", st, tarfile.DIRTYPE)
            ti.pax_headers = _xattrs(path)
            out.header(ti)
            if _is_opaque(path):
                ti = _info(f"{arc}/{OPAQUE}", st, tarfile.REGTYPE)
                ti.mode = 0
                out.header(ti)
            stack.append((arc, iter(sorted(os.listdir(path)))))
            continue
        if stat.S_ISREG(mode) and st.st_nlink > 1:
            first = links.get((st.st_dev, st.st_ino))
            if first:
                ti = _info(arc, st, tarfile.LNKTYPE)
                ti.linkname = first
                out.header(ti)
                continue
            links[(st.st_dev, st.st_ino)] = arc
        if stat.S_ISREG(mode):
            ti = _info(arc, st, tarfile.REGTYPE)
            ti.size = st.st_size
            ti.pax_headers = _xattrs(path)
            out.header(ti)
            out.data(path, st.st_size)
        elif stat.S_ISLNK(mode):
            ti = _info(arc, st, tarfile.SYMTYPE)
            ti.linkname = os.readlink(path)
            out.header(ti)
        elif stat.S_ISFIFO(mode):
            out.header(_info(arc, st, tarfile.FIFOTYPE))
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            ti = _info(arc, st, tarfile.CHRTYPE if stat.S_ISCHR(mode) else tarfile.BLKTYPE)
            ti.devmajor, ti.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
            out.header(ti)
        # sockets are not archived, as Docker's archive skips them

    sink.write(b"\0" * (2 * BLOCK))
