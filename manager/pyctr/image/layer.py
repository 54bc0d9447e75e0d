"""Apply a layer tarball to a directory, the way overlay2 stores it, without ever leaving it.

Every entry is created relative to a directory fd opened with openat2(RESOLVE_BENEATH |
RESOLVE_NO_SYMLINKS): an entry or hard link that would land outside the layer, or that passes
through a symbolic link (including one the same layer just created), is refused with a LayerError
naming the entry. The caller removes the partial layer.

Whiteouts (image-spec layer.md) take their overlay form: `.wh.<name>` becomes a 0:0 character
device, `.wh..wh..opq` the `trusted.overlay.opaque=y` xattr on its directory. Other `.wh..wh.*`
names are AUFS metadata (`.wh..wh.plnk`, `.wh..wh.aufs`, `.wh..wh.orph`), skipped as Docker skips
them, except that a hard link to a file kept in `.wh..wh.plnk/` gets that file's content. Device
nodes other than 0:0 are refused unless allow_devices (a layer has no business creating /dev/sda in
an image). xattrs in the trusted.overlay. namespace are dropped: only whiteout files may steer
overlayfs. An empty stream is an empty layer (Docker and podman load a 0-byte layer.tar).

What a header declares is bounded before it is written: a file's size against the free space of the
store's filesystem (a sparse entry or a compressed bomb fails at once, not when the disk is full),
ids against the 32-bit range; a time outside what the kernel stores becomes the epoch, as Docker's
chtimes does.
"""
import errno
import hashlib
import os
import stat
import tarfile
import zlib

from pyctr.errors import LayerError
from pyctr.image.fsutil import RESERVE, NoSpace, free_bytes, remove_at
from pyrunc.sys import calls as _calls
from pyrunc.sys import consts as _c

_RESOLVE = _c.RESOLVE_BENEATH | _c.RESOLVE_NO_SYMLINKS | _c.RESOLVE_NO_MAGICLINKS | _c.RESOLVE_NO_XDEV
WHITEOUT_PREFIX = ".wh."
AUFS_META_PREFIX = ".wh..wh."
AUFS_LINK_DIR = ".wh..wh.plnk"
OPAQUE = ".wh..wh..opq"
MAX_ID = (1 << 32) - 2   # (uid_t)-1 means "unchanged" to chown
_NS = 1_000_000_000
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
        self.error = None
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
            self.error = e
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
        self.dest = dest
        self.budget = free_bytes(dest) - RESERVE  # bytes this layer may still write (see reserve())
        self.plnk = {}  # AUFS hard-link holding files: name -> (member, path of the first copy)

    def close(self):
        self._drop_cache()
        os.close(self.root)

    def reserve(self, size):
        """Account for an entry of size bytes; refuse it when the filesystem lacks the room."""
        need = -(-size // 4096) * 4096 + 4096
        if need > self.budget:
            self.budget = free_bytes(self.dest) - RESERVE  # others may have freed or used space
            if need > self.budget:
                raise NoSpace(f"it declares {size} bytes but the store's filesystem has "
                              f"{max(0, self.budget)} bytes free")
        self.budget -= need

    def check_header(self, m):
        for field in ("uid", "gid"):
            v = getattr(m, field)
            if not isinstance(v, int) or not 0 <= v <= MAX_ID:
                self.fail(f"its {field} {v} is out of range (0 to {MAX_ID})")
        if (m.ischr() or m.isblk()) and not (0 <= m.devmajor < 1 << 32 and 0 <= m.devminor < 1 << 32):
            self.fail(f"device numbers {m.devmajor}:{m.devminor} are out of range")
        if m.size < 0:
            self.fail("negative size")

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
            self.check_header(m)
            if any(p.startswith(AUFS_META_PREFIX) and p != OPAQUE for p in parts):
                if parts[0] == AUFS_LINK_DIR and len(parts) == 2 and m.isreg():
                    self.keep_aufs_link_target(tf, m, parts[1])
                continue
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
            remove_at(pfd, base)
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

    def keep_aufs_link_target(self, tf, m, name):
        """Hold a file of AUFS's .wh..wh.plnk/ aside (outside the layer) for the links to it."""
        if name in self.plnk:
            return
        self.reserve(m.size)
        held = os.path.join(os.path.dirname(self.dest), f"aufs-plnk-{len(self.plnk)}")
        fd = os.open(held, _CREATE_FLAGS, 0o600)
        try:
            self.copy_data(tf, m, fd)
        finally:
            os.close(fd)
        self.plnk[name] = (m, None, held)

    def aufs_link(self, m, pfd, base, name):
        """A hard link into .wh..wh.plnk/: the first becomes a file with the held content and the
        held header's metadata, the next ones links to that file."""
        held = self.plnk.get(name)
        if held is None:
            self.fail(f"hard link target {m.linkname!r} is not in this layer")
        member, first, path = held
        if first is not None:
            m.linkname = first
            return False
        existing = self._lstat(base, pfd)
        if existing is not None:
            self._remove(base, pfd, existing)
        os.rename(path, base, dst_dir_fd=pfd)
        fd = os.open(base, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=pfd)
        try:
            self.metadata(member, fd)
        finally:
            os.close(fd)
        self.plnk[name] = (member, m.name, None)
        return True

    def discard_aufs_held(self):
        for _, _, path in self.plnk.values():
            if path:
                try:
                    os.unlink(path)
                except FileNotFoundError:
                    pass

    def hardlink(self, m, pfd, base):
        tparts = clean_name(m.linkname, f"its hard link target {m.linkname!r}", self.layer, m.name)
        if len(tparts) == 2 and tparts[0] == AUFS_LINK_DIR:
            if self.aufs_link(m, pfd, base, tparts[1]):
                return
            tparts = clean_name(m.linkname, "its hard link target", self.layer, m.name)  # the first copy
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
        self.reserve(m.size)
        fd = self._create(lambda: os.open(base, _CREATE_FLAGS, perm, dir_fd=pfd), base, pfd)
        try:
            self.copy_data(tf, m, fd)
            self.metadata(m, fd, created=None if self.umask is None else perm & ~self.umask)
        finally:
            os.close(fd)

    @staticmethod
    def copy_data(tf, m, fd):
        if not m.size:
            return
        src = tf.extractfile(m)
        while True:  # os.write, not a FileIO: that would fstat every file
            chunk = src.read(_CHUNK)
            if not chunk:
                break
            view = memoryview(chunk)
            while view:
                view = view[os.write(fd, view):]

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
        mtime = _mtime_ns(m)
        os.utime(fd, ns=(mtime, mtime))

    def owner_and_times(self, m, base, pfd, symlink=False):
        os.chown(base, m.uid, m.gid, dir_fd=pfd, follow_symlinks=False)
        if not symlink:
            os.chmod(base, m.mode & 0o7777, dir_fd=pfd)
        mtime = _mtime_ns(m)
        os.utime(base, ns=(mtime, mtime), dir_fd=pfd, follow_symlinks=False)


def _mtime_ns(m):
    """The header's mtime in ns; the epoch for one before it or past what a 64-bit time holds in
    ns (moby pkg/system Chtimes does the same)."""
    try:
        ns = int(m.mtime * _NS) if m.mtime else 0
    except (OverflowError, ValueError, TypeError):
        return 0
    return ns if 0 <= ns < 1 << 63 else 0


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
            try:
                tf = tarfile.open(fileobj=reader, mode="r|", errorlevel=2)
            except tarfile.ReadError:
                if reader.read(1) or reader.size or reader.error:
                    if reader.error:
                        raise reader.error from None
                    raise
                tf = ()  # an empty stream: an empty layer, as Docker and podman take it
            app.apply(tf)
            # the rest of the stream (tar padding, the gzip trailer) is part of the diff id and
            # must be intact too
            diff_id = reader.drain()
        except NoSpace as e:
            raise LayerError(layer, app.entry, str(e)) from None
        except tarfile.TarError as e:
            raise LayerError(layer, app.entry, f"not a valid tar archive ({e})") from None
        except (EOFError, OSError, zlib.error) as e:
            if getattr(e, "errno", None) == errno.ENOSPC:
                raise LayerError(layer, app.entry, f"the store's filesystem is full ({dest})") from None
            if app.entry:
                raise LayerError(layer, app.entry, f"{e.__class__.__name__}: {e}") from None
            raise LayerError(layer, "", f"cannot read the layer ({e})") from None
    finally:
        reader.close()
        app.discard_aufs_held()
        app.close()
    return diff_id, reader.size
