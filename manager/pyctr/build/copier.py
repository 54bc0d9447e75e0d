"""COPY and ADD into a stage's root filesystem (an overlay mount of its layers), with Docker's
destination rules: a relative destination is under WORKDIR; several sources need a destination
ending in `/`; a directory's content (and its own mode) lands in the destination; a file lands in a
destination directory or becomes the destination. Owners are 0:0, or --chown's, or (COPY --from
without --chown) the source's; --chmod applies to every entry copied. ADD extracts a local tar
(plain, gzip, bzip2, xz) into the destination.

Every destination path is resolved inside the root as if it were `/` (sources.scoped_path), and
the last component is never followed: a symlink in the image cannot send a write to the host."""
import os
import posixpath
import shutil
import stat
import tarfile

from pyctr.build.sources import SourceError, scoped_path


class Owner:
    """uid/gid to give copied entries; None each: keep the source's. `explicit`: from --chown
    (ADD's extraction keeps the archive's owners otherwise, as Docker's)."""

    def __init__(self, uid=0, gid=0, explicit=False):
        self.uid, self.gid, self.explicit = uid, gid, explicit

    def of(self, st):
        return (st.st_uid if self.uid is None else self.uid), (st.st_gid if self.gid is None else self.gid)


class Target:
    def __init__(self, root, owner, chmod):
        self.root, self.owner, self.chmod = root, owner, chmod

    def host(self, path):
        """Host path for an image path: parents resolved in the root, the last name as it is."""
        parent, name = posixpath.split(posixpath.normpath("/" + path))
        return os.path.join(scoped_path(self.root, parent), name) if name else self.root

    def real(self, path):
        """The image path with every symlink in it resolved inside the root (Docker follows the
        destination's symlinks, scoped: `/bin -> usr/bin` makes `COPY x /bin/` land in /usr/bin)."""
        rel = os.path.relpath(scoped_path(self.root, path), self.root)
        return "/" if rel == "." else "/" + rel

    def mkdirs(self, path):
        """Create the missing directories of an image path (0755, the copy's owner), as Docker's
        MkdirAllAndChownNew."""
        parts = [p for p in posixpath.normpath("/" + path).split("/") if p]
        for i in range(1, len(parts) + 1):
            h = self.host("/".join(parts[:i]))
            try:
                st = os.lstat(h)
            except FileNotFoundError:
                os.mkdir(h, 0o755)
                os.chmod(h, 0o755)
                uid, gid = self.owner.uid or 0, self.owner.gid or 0
                os.chown(h, uid, gid)
                continue
            if stat.S_ISLNK(st.st_mode):
                continue  # resolved by the next host() call, inside the root
            if not stat.S_ISDIR(st.st_mode):
                raise SourceError(f"cannot create directory /{'/'.join(parts[:i])}: a file is in the way")

    def _clear(self, h, is_dir):
        try:
            st = os.lstat(h)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(st.st_mode):
            if is_dir:
                return
            raise SourceError(f"cannot replace directory {h[len(self.root):]} with a file")
        os.unlink(h)

    def put(self, src_host, dest, st):
        """Create dest (an image path) as a copy of the lstat'ed source entry."""
        h = self.host(dest)
        mode = stat.S_IMODE(st.st_mode) if self.chmod is None else self.chmod
        uid, gid = self.owner.of(st)
        if stat.S_ISDIR(st.st_mode):
            self._clear(h, True)
            if not os.path.isdir(h) or os.path.islink(h):
                os.mkdir(h, 0o700)
        elif stat.S_ISREG(st.st_mode):
            self._clear(h, False)
            with open(src_host, "rb") as fsrc:
                fd = os.open(h, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
                with open(fd, "wb") as fdst:
                    shutil.copyfileobj(fsrc, fdst, 1 << 20)
        elif stat.S_ISLNK(st.st_mode):
            self._clear(h, False)
            os.symlink(os.readlink(src_host), h)
            os.lchown(h, uid, gid)
            os.utime(h, ns=(st.st_mtime_ns, st.st_mtime_ns), follow_symlinks=False)
            return
        elif stat.S_ISFIFO(st.st_mode):
            self._clear(h, False)
            os.mkfifo(h, 0o600)
        else:
            return  # devices and sockets are not copied
        os.chown(h, uid, gid)
        os.chmod(h, mode)
        os.utime(h, ns=(st.st_mtime_ns, st.st_mtime_ns))


def _is_archive(path):
    try:
        with tarfile.open(path, "r:*") as tf:
            return tf.next() is not None
    except (tarfile.TarError, OSError, EOFError, ValueError):
        return False


def copy(origin, sources, root, dest, owner, chmod=None, cmd="COPY", extract=False):
    """Copy resolved sources into root at dest (already made absolute against WORKDIR)."""
    target = Target(root, owner, chmod)
    dir_dest = dest.endswith("/") or dest.endswith("/.") or dest == "."
    if len(sources) > 1 and not dir_dest:
        raise SourceError(f"When using {cmd} with more than one source file, the destination must be a "
                          f"directory and end with a /")
    dest = posixpath.normpath(target.real(posixpath.normpath("/" + dest)))
    for s in sources:
        st = os.stat(s.path)
        if stat.S_ISDIR(st.st_mode):
            target.mkdirs(posixpath.dirname(dest))
            for host, rel, est in origin.walk(s):
                path = posixpath.join(dest, rel) if rel else dest
                if rel and "/" in rel:
                    target.mkdirs(posixpath.dirname(path))
                target.put(host, path, est)
            continue
        if extract and _is_archive(s.path):
            target.mkdirs(dest)
            extract_tar(s.path, target, dest)
            continue
        if dir_dest or os.path.isdir(target.host(dest)):
            target.mkdirs(dest)
            path = posixpath.join(dest, posixpath.basename(s.rel) or posixpath.basename(s.path))
        else:
            target.mkdirs(posixpath.dirname(dest))
            path = dest
        target.put(s.path, path, st)


def extract_tar(path, target, dest):
    """ADD's auto-extraction: members cleaned to stay under dest, links kept inside the root."""
    class _St:  # the lstat fields Target.put reads, from a tar member
        def __init__(self, m):
            kind = {tarfile.DIRTYPE: stat.S_IFDIR, tarfile.SYMTYPE: stat.S_IFLNK,
                    tarfile.FIFOTYPE: stat.S_IFIFO}.get(m.type, stat.S_IFREG)
            self.st_mode = kind | (m.mode & 0o7777)
            self.st_uid, self.st_gid = m.uid, m.gid
            self.st_mtime_ns = int(m.mtime) * 1_000_000_000

    if not target.owner.explicit:
        target = Target(target.root, Owner(None, None), target.chmod)
    try:
        with tarfile.open(path, "r:*") as tf:
            for m in tf:
                name = posixpath.normpath("/" + m.name).lstrip("/")
                if not name or name == ".":
                    continue
                out = posixpath.join(dest, name)
                target.mkdirs(posixpath.dirname(out))
                if m.isreg():
                    f = tf.extractfile(m)
                    tmp = target.host(out)
                    target._clear(tmp, False)
                    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
                    with open(fd, "wb") as w:
                        shutil.copyfileobj(f, w, 1 << 20)
                    st = _St(m)
                    os.chown(tmp, *target.owner.of(st))
                    os.chmod(tmp, m.mode & 0o7777 if target.chmod is None else target.chmod)
                    os.utime(tmp, ns=(st.st_mtime_ns, st.st_mtime_ns))
                elif m.islnk():
                    src = target.host(posixpath.join(dest, posixpath.normpath("/" + m.linkname).lstrip("/")))
                    h = target.host(out)
                    target._clear(h, False)
                    if not os.path.isfile(src) or os.path.islink(src):
                        raise SourceError(f"ADD: {path}: hard link {m.name} -> {m.linkname} names no file "
                                          f"in the archive")
                    os.link(src, h)
                elif m.issym():
                    h = target.host(out)
                    target._clear(h, False)
                    os.symlink(m.linkname, h)
                    os.lchown(h, *target.owner.of(_St(m)))
                elif m.isdir() or m.isfifo():
                    st = _St(m)
                    target.put(None, out, st)
    except (tarfile.TarError, EOFError) as e:
        raise SourceError(f"ADD: cannot extract {os.path.basename(path)}: {e}") from None
