"""A directory tree as a tar stream, as `docker export` writes one: the root's own entry ("./",
its mode, owner and times), hard links as links, and every xattr (file capabilities, user.*,
trusted.*) as PAX SCHILY.xattr records. The walk is iterative (fsutil.walk): a tree a thousand
levels deep exports like any other."""
import errno
import os
import stat
import tarfile

from pyctr.image.fsutil import walk

_CHUNK = 1 << 20
# overlayfs's own attributes (opaque dirs, redirects) describe the layer, not the filesystem
_OVERLAY_XATTRS = ("trusted.overlay.", "user.overlay.")


def _xattrs(path):
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError as e:
        if e.errno in (errno.ENOTSUP, errno.EPERM):
            return {}
        raise
    out = {}
    for name in sorted(names):
        if name.startswith(_OVERLAY_XATTRS) or name.startswith("system.posix_acl"):
            continue
        try:
            value = os.getxattr(path, name, follow_symlinks=False)
        except OSError as e:
            if e.errno in (errno.ENODATA, errno.ENOTSUP):
                continue
            raise
        # tarfile writes a value that is not UTF-8 with hdrcharset=BINARY, bytes intact
        out["SCHILY.xattr." + name] = value.decode("utf-8", "surrogateescape")
    return out


def _is_whiteout(st):
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def write_tree(root, out, raw_layer=False):
    """Write the tree at root to the binary stream out. raw_layer: root is one layer's diff dir,
    whose whiteouts (0:0 character devices) are left out."""
    links = {}
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tf:
        for rel, st in walk(root):
            if raw_layer and _is_whiteout(st):
                continue
            if stat.S_ISSOCK(st.st_mode):
                continue  # sockets do not go into archives (tar and docker skip them)
            path = os.path.join(root, rel) if rel else root
            info = tarfile.TarInfo(rel or ".")
            info.uid, info.gid = st.st_uid, st.st_gid
            info.mode = stat.S_IMODE(st.st_mode)
            info.mtime = st.st_mtime_ns // 1_000_000_000
            info.pax_headers = _xattrs(path)
            if stat.S_ISREG(st.st_mode) and st.st_nlink > 1 and (st.st_dev, st.st_ino) in links:
                info.type, info.linkname = tarfile.LNKTYPE, links[(st.st_dev, st.st_ino)]
                tf.addfile(info)
                continue
            if stat.S_ISREG(st.st_mode):
                if st.st_nlink > 1:
                    links[(st.st_dev, st.st_ino)] = rel
                fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
                with open(fd, "rb") as f:
                    info.size = os.fstat(fd).st_size
                    tf.addfile(info, f)
                continue
            if stat.S_ISDIR(st.st_mode):
                info.type = tarfile.DIRTYPE
            elif stat.S_ISLNK(st.st_mode):
                info.type, info.linkname = tarfile.SYMTYPE, os.readlink(path)
            elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                info.type = tarfile.CHRTYPE if stat.S_ISCHR(st.st_mode) else tarfile.BLKTYPE
                info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
            elif stat.S_ISFIFO(st.st_mode):
                info.type = tarfile.FIFOTYPE
            tf.addfile(info)
