"""Apply a layer tarball to a directory, the way overlay2 stores it, without ever leaving it.

Every entry is created relative to a directory fd opened with openat2(RESOLVE_BENEATH |
RESOLVE_NO_SYMLINKS): an entry or hard link that would land outside the layer, or that passes
through a symbolic link (including one the same layer just created), is refused with a LayerError
naming the entry. The caller removes the partial layer.

Whiteouts (image-spec layer.md) take their overlay form: `.wh.<name>` becomes a 0:0 character
device, `.wh..wh..opq` the `trusted.overlay.opaque=y` xattr on its directory. Device nodes other
than 0:0 are refused unless allow_devices (a layer has no business creating /dev/sda in an image).
xattrs in the trusted.overlay. namespace are dropped: only whiteout files may steer overlayfs.
"""
import errno
import hashlib
import os
import shutil
import stat
import tarfile
import zlib

from pyctr.errors import LayerError
from pyrunc.sys import calls as _calls
from pyrunc.sys import consts as _c

_RESOLVE = _c.RESOLVE_BENEATH | _c.RESOLVE_NO_SYMLINKS | _c.RESOLVE_NO_MAGICLINKS | _c.RESOLVE_NO_XDEV
WHITEOUT_PREFIX = ".wh."
OPAQUE = ".wh..wh..opq"
OPAQUE_XATTR = "trusted.overlay.opaque"
_CHUNK = 1 << 20
_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


class HashReader:
    """Hashes (and counts) the uncompressed tar as it is read: that digest is the diff id.

    Decompression and hashing run in a thread that reads ahead (zlib, zstandard and hashlib release
    the GIL), so they overlap with the file creation the applier does: on two cores a gzipped layer
    unpacks about as fast as `tar -xz`, whose gzip is a separate process.
    """

    _DEPTH = 8  # chunks read ahead

    def __init__(self, f):
        import queue
        import threading
        self.f, self.h, self.size = f, hashlib.sha256(), 0
        self.q = queue.Queue(self._DEPTH)
        self.buf, self.pos, self.eof = b"", 0, False
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._pump, name="layer-reader", daemon=True)
        self.thread.start()

    def _put(self, item):
        import queue
        while not self.stopping.is_set():
            try:
                self.q.put(item, timeout=0.5)
                return
            except queue.Full:
                continue

    def _pump(self):
        item = b""
        try:
            while item is not None and not self.stopping.is_set():
                item = self.f.read(_CHUNK) or None
                if item is not None:
                    self.h.update(item)
                    self.size += len(item)
                self._put(item)
        except BaseException as e:  # handed to the reader, which raises it in the caller's thread
            self._put(e)

    def read(self, n=-1):
        out = []
        while n < 0 or n > 0:
            if self.pos >= len(self.buf):
                if self.eof:
                    break
                item = self.q.get()
                if item is None:
                    self.eof = True
                    break
                if isinstance(item, BaseException):
                    self.eof = True
                    raise item
                self.buf, self.pos = item, 0
            end = len(self.buf) if n < 0 else min(len(self.buf), self.pos + n)
            out.append(self.buf[self.pos:end] if self.pos or end < len(self.buf) else self.buf)
            if n > 0:
                n -= end - self.pos
            self.pos = end
        return out[0] if len(out) == 1 else b"".join(out)

    def drain(self):
        while self.read(_CHUNK):
            pass
        self.thread.join()
        return "sha256:" + self.h.hexdigest()

    def close(self):
        """Stop reading ahead (on error); the caller's file may be closed once this returns."""
        import queue
        self.stopping.set()
        while self.thread.is_alive():
            try:
                self.q.get(timeout=0.1)
            except queue.Empty:
                pass
        self.thread.join()


class Gunzip:
    """A gzip stream reader on zlib directly, in large chunks (gzip.GzipFile inflates 8 KiB at a time
    in 3.11). Several members in a row are one stream, as gzip(1) reads them; the trailer's CRC and
    length are checked by zlib; a stream cut short raises EOFError. read(n) may return fewer bytes.
    """

    def __init__(self, f):
        self.f = f
        self.d = zlib.decompressobj(31)

    def read(self, n=-1):
        n = _CHUNK if n is None or n < 0 else n
        while True:
            if self.d.eof:  # checked first: zlib may leave a stale unconsumed_tail behind at the end
                rest = self.d.unused_data or self.f.read(_CHUNK)
                if not rest.strip(b"\0"):
                    return b""  # end of stream (trailing NUL padding is tolerated, as gzip does)
                self.d = zlib.decompressobj(31)
                out = self.d.decompress(rest, n)
            elif self.d.unconsumed_tail:
                out = self.d.decompress(self.d.unconsumed_tail, n)
            else:
                data = self.f.read(_CHUNK)
                if not data:
                    raise EOFError("compressed data ended before the end of the gzip stream")
                out = self.d.decompress(data, n)
            if out:
                return out


def decompressed(f):
    """A reader of the uncompressed tar whatever the layer's compression (by magic, not media type)."""
    import io
    if not isinstance(f, io.BufferedReader):
        f = io.BufferedReader(f, _CHUNK) if hasattr(f, "readinto") else f
    head = f.peek(4)[:4] if hasattr(f, "peek") else b""
    if head.startswith(GZIP_MAGIC):
        return Gunzip(f)
    if head.startswith(ZSTD_MAGIC):
        try:
            import zstandard
        except ImportError:
            from pyctr.errors import PyctrError
            raise PyctrError("zstd-compressed layer but the zstandard module is not installed") from None
        return zstandard.ZstdDecompressor().stream_reader(f, read_size=_CHUNK)
    return f


def clean_name(name, what, layer, entry):
    """Path components of a tar name; refuses absolute names and any `..`."""
    if name.startswith("/"):
        raise LayerError(layer, entry, f"{what} is an absolute path")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise LayerError(layer, entry, f"{what} contains '..' (it would land outside the layer)")
    if any("\0" in p for p in parts):
        raise LayerError(layer, entry, f"{what} contains a NUL byte")
    return parts


def _creation_umask(dir_fd):
    """The umask that decides the mode of files created below dir_fd, or None if something else
    may (a default ACL on it, an unreadable /proc): then every file gets its fchmod."""
    try:
        os.getxattr(dir_fd, "system.posix_acl_default")
        return None
    except OSError as e:
        if e.errno not in (errno.ENODATA, errno.ENOTSUP):
            return None
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return None


class _Applier:
    def __init__(self, dest, layer, allow_devices):
        self.layer = layer
        self.allow_devices = allow_devices
        self.root = os.open(dest, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        self.cache_key, self.cache_fd = None, None
        self.dirs = []   # (parts, member) to stamp once all children are written
        self.entry = ""
        self.ids = (os.geteuid(), os.getegid())
        self.umask = _creation_umask(self.root)

    def close(self):
        self._drop_cache()
        os.close(self.root)

    def _drop_cache(self):
        if self.cache_fd is not None:
            os.close(self.cache_fd)
        self.cache_key, self.cache_fd = None, None

    def fail(self, why):
        raise LayerError(self.layer, self.entry, why)

    def _open_dir(self, parts, create):
        rel = "/".join(parts) or "."
        try:
            return _calls.openat2(self.root, rel, os.O_RDONLY | os.O_DIRECTORY, 0, _RESOLVE)
        except OSError as e:
            if e.errno == errno.ENOENT and create:
                return self._make_dirs(parts)
            if e.errno in (errno.ELOOP, errno.EXDEV):
                self.fail(f"its parent {rel!r} is or passes through a symbolic link (refusing to write "
                          f"through it)")
            if e.errno == errno.ENOTDIR:
                self.fail(f"a parent in {rel!r} is not a directory")
            if e.errno == errno.ENOENT:
                self.fail(f"{rel!r} does not exist in this layer")
            raise

    def _make_dirs(self, parts):
        fd = os.dup(self.root)
        try:
            for p in parts:
                try:
                    os.mkdir(p, 0o755, dir_fd=fd)
                except FileExistsError:
                    pass
                try:
                    nfd = _calls.openat2(fd, p, os.O_RDONLY | os.O_DIRECTORY, 0, _RESOLVE)
                except OSError as e:
                    if e.errno in (errno.ELOOP, errno.EXDEV):
                        self.fail(f"parent {p!r} is a symbolic link (refusing to write through it)")
                    if e.errno == errno.ENOTDIR:
                        self.fail(f"parent {p!r} is not a directory")
                    raise
                os.close(fd)
                fd = nfd
            return fd
        except BaseException:
            os.close(fd)
            raise

    def parent(self, parts):
        key = tuple(parts)
        if key != self.cache_key:
            self._drop_cache()
            self.cache_fd = self._open_dir(parts, create=True)
            self.cache_key = key
        return self.cache_fd

    def apply(self, tf):
        for m in tf:
            self.entry = m.name
            parts = clean_name(m.name, "its name", self.layer, m.name)
            if not parts:
                if m.isdir():
                    self.dirs.append(([], m))
                    continue
                self.fail("names the layer root but is not a directory")
            base = parts[-1]
            pfd = self.parent(parts[:-1])
            if base.startswith(WHITEOUT_PREFIX):
                self.whiteout(pfd, parts, base)
                continue
            if m.islnk():
                self.hardlink(m, pfd, base)
                continue
            if m.isreg():
                self.regular(tf, m, pfd, base)
            elif m.isdir():
                self._create(lambda: os.mkdir(base, 0o700, dir_fd=pfd), base, pfd, keep_dir=True)
                self.dirs.append((parts, m))
            elif m.issym():
                self._create(lambda: os.symlink(m.linkname, base, dir_fd=pfd), base, pfd)
                self.owner_and_times(m, base, pfd, symlink=True)
            elif m.ischr() or m.isblk():
                if not (m.ischr() and m.devmajor == 0 and m.devminor == 0) and not self.allow_devices:
                    kind = "c" if m.ischr() else "b"
                    self.fail(f"device node ({kind} {m.devmajor}:{m.devminor}) refused "
                              f"(--allow-device-nodes to accept)")
                kind = stat.S_IFCHR if m.ischr() else stat.S_IFBLK
                self._create(lambda: os.mknod(base, kind | (m.mode & 0o7777),
                                              os.makedev(m.devmajor, m.devminor), dir_fd=pfd), base, pfd)
                self.owner_and_times(m, base, pfd)
            elif m.isfifo():
                self._create(lambda: os.mkfifo(base, m.mode & 0o7777, dir_fd=pfd), base, pfd)
                self.owner_and_times(m, base, pfd)
            else:
                self.fail(f"unsupported tar entry type {m.type!r}")
        self.entry = ""
        self._drop_cache()
        for parts, m in sorted(self.dirs, key=lambda d: -len(d[0])):
            try:
                fd = _calls.openat2(self.root, "/".join(parts) or ".", os.O_RDONLY | os.O_DIRECTORY, 0,
                                    _RESOLVE)
            except OSError:
                continue  # replaced later in the layer by a non-directory: nothing to stamp
            try:
                self.metadata(m, fd)
            finally:
                os.close(fd)

    @staticmethod
    def _lstat(base, pfd):
        try:
            return os.lstat(base, dir_fd=pfd)
        except FileNotFoundError:
            return None

    def _remove(self, base, pfd, st):
        if stat.S_ISDIR(st.st_mode):
            shutil.rmtree(base, dir_fd=pfd)
        else:
            os.unlink(base, dir_fd=pfd)

    def whiteout(self, pfd, parts, base):
        if base == OPAQUE:
            os.setxattr(pfd, OPAQUE_XATTR, b"y")
            return
        name = base[len(WHITEOUT_PREFIX):]
        if name in ("", ".", "..") or name.startswith(WHITEOUT_PREFIX):
            self.fail("invalid whiteout name")
        # Same-layer rule: an entry this layer already created stays visible.
        if self._lstat(name, pfd) is None:
            os.mknod(name, stat.S_IFCHR | 0o600, os.makedev(0, 0), dir_fd=pfd)

    def hardlink(self, m, pfd, base):
        tparts = clean_name(m.linkname, f"its hard link target {m.linkname!r}", self.layer, m.name)
        if not tparts:
            self.fail("hard link to the layer root")
        tfd = self._open_dir(tparts[:-1], create=False)
        try:
            st = self._lstat(tparts[-1], tfd)
            if st is None:
                self.fail(f"hard link target {m.linkname!r} is not in this layer")
            if stat.S_ISDIR(st.st_mode):
                self.fail(f"hard link target {m.linkname!r} is a directory")
            existing = self._lstat(base, pfd)
            if existing is not None:
                if existing.st_ino == st.st_ino and existing.st_dev == st.st_dev:
                    return
                self._remove(base, pfd, existing)
            os.link(tparts[-1], base, src_dir_fd=tfd, dst_dir_fd=pfd, follow_symlinks=False)
        finally:
            os.close(tfd)

    def _create(self, make, base, pfd, keep_dir=False):
        """make() the entry; if an earlier entry of this layer took its name, replace that (or keep
        it, a directory where a directory is wanted). The staging dir starts empty, so the name is
        nearly always free: trying first saves an lstat per entry."""
        try:
            return make()
        except FileExistsError:
            existing = self._lstat(base, pfd)
            if existing is not None:
                if keep_dir and stat.S_ISDIR(existing.st_mode):
                    return None
                self._remove(base, pfd, existing)
            return make()

    def regular(self, tf, m, pfd, base):
        perm = m.mode & 0o777
        fd = self._create(lambda: os.open(base, _CREATE_FLAGS, perm, dir_fd=pfd), base, pfd)
        try:
            if m.size:
                src = tf.extractfile(m)
                while True:  # os.write, not a FileIO: that would fstat every file
                    chunk = src.read(_CHUNK)
                    if not chunk:
                        break
                    view = memoryview(chunk)
                    while view:
                        view = view[os.write(fd, view):]
            self.metadata(m, fd, created=None if self.umask is None else perm & ~self.umask)
        finally:
            os.close(fd)

    def metadata(self, m, fd, created=None):
        """Owner, mode, xattrs and times from the tar header. created: the mode a file was just
        created with by this process (owner: our ids, as no parent is setgid until the directories
        are stamped at the end); its fchown and fchmod are skipped when they would change nothing."""
        if created is None or (m.uid, m.gid) != self.ids:
            os.fchown(fd, m.uid, m.gid)
        if created is None or (m.mode & 0o7777) != created:
            os.fchmod(fd, m.mode & 0o7777)  # after chown, which clears setuid bits
        for key, value in m.pax_headers.items():
            if key.startswith("SCHILY.xattr."):
                name = key[len("SCHILY.xattr."):]
                if name.startswith("trusted.overlay."):
                    continue
                raw = value.encode("utf-8", "surrogateescape")
                try:
                    os.setxattr(fd, name, raw)
                except OSError as e:
                    if e.errno not in (errno.ENOTSUP, errno.EPERM):
                        raise
        mtime = int(m.mtime * 1e9) if m.mtime else 0
        os.utime(fd, ns=(mtime, mtime))

    def owner_and_times(self, m, base, pfd, symlink=False):
        os.chown(base, m.uid, m.gid, dir_fd=pfd, follow_symlinks=False)
        if not symlink:
            os.chmod(base, m.mode & 0o7777, dir_fd=pfd)
        mtime = int(m.mtime * 1e9) if m.mtime else 0
        os.utime(base, ns=(mtime, mtime), dir_fd=pfd, follow_symlinks=False)


def apply_layer(f, dest, layer="layer", allow_devices=False):
    """Apply the (possibly compressed) layer read from f into the existing directory dest.

    Returns (diff_id, uncompressed size). On error raises (LayerError for hostile or broken content)
    and leaves dest for the caller to remove.
    """
    src = decompressed(f)
    app = _Applier(dest, layer, allow_devices)
    reader = HashReader(src)
    try:
        try:
            tf = tarfile.open(fileobj=reader, mode="r|", errorlevel=2)
            app.apply(tf)
            # the rest of the stream (tar padding, the gzip trailer) is part of the diff id and
            # must be intact too
            diff_id = reader.drain()
        except tarfile.TarError as e:
            raise LayerError(layer, app.entry, f"not a valid tar archive ({e})") from None
        except (EOFError, OSError, zlib.error) as e:
            if app.entry:
                raise LayerError(layer, app.entry, f"{e.__class__.__name__}: {e}") from None
            raise LayerError(layer, "", f"cannot read the layer ({e})") from None
    finally:
        reader.close()
        app.close()
    return diff_id, reader.size
