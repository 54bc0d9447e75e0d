"""Verify what the store serves: save and push hash every blob and layer as they read it, and a
copy that does not match its digest (or its diff id) fails naming the layer, instead of passing
planted content on. Loading checks a blob against the diff id it claims even when the store
already has that layer."""
import hashlib
import io
import zlib

from pyctr.errors import DigestMismatch, PyctrError

_CHUNK = 1 << 20


class StoreCorrupted(PyctrError):
    def __init__(self, what, expected, actual):
        super().__init__(f"{what} in the store does not match its digest: expected {expected}, got "
                         f"{actual} (the store's copy is corrupted or was tampered with; remove the "
                         f"image and pull or load it again)")


class _HashingRaw(io.RawIOBase):
    """A raw stream over f that hashes every byte read through it."""

    def __init__(self, f):
        self.f, self.h, self.size = f, hashlib.sha256(), 0

    def readable(self):
        return True

    def readinto(self, b):
        n = self.f.readinto(b)
        if n:
            self.h.update(memoryview(b)[:n])
            self.size += n
        return n

    def digest(self):
        return "sha256:" + self.h.hexdigest()


def layer_digests(f, what="layer"):
    """(blob digest, diff id, uncompressed size) of a layer blob read from the binary file f."""
    from pyctr.image.layer import decompressed
    raw = _HashingRaw(f)
    buf = io.BufferedReader(raw, _CHUNK)
    h, size = hashlib.sha256(), 0
    try:
        src = decompressed(buf)
        while True:
            chunk = src.read(_CHUNK)
            if not chunk:
                break
            h.update(chunk)
            size += len(chunk)
    except (EOFError, OSError, zlib.error) as e:
        raise PyctrError(f"{what}: cannot be decompressed ({e})") from None
    except Exception as e:  # zstandard.ZstdError, which is not imported unless a layer needs it
        if e.__class__.__name__ != "ZstdError":
            raise
        raise PyctrError(f"{what}: cannot be decompressed ({e})") from None
    while buf.read(_CHUNK):  # what the decompressor left (zstd padding) is part of the blob
        pass
    return raw.digest(), "sha256:" + h.hexdigest(), size


def check_diff_id(f, expected, what):
    """Refuse (DigestMismatch) a blob being loaded whose content is not the layer it claims."""
    _, diff_id, _ = layer_digests(f, what)
    if diff_id != expected:
        raise DigestMismatch(f"{what} (uncompressed diff id)", expected, diff_id)


def check_stored_layer(store, blob_digest, diff_id):
    """Check a stored layer blob against its digest and its diff id before it is served; returns
    its uncompressed size."""
    try:
        f = open(store.content.path(blob_digest), "rb")
    except FileNotFoundError:
        raise PyctrError(f"layer blob {blob_digest} is missing from the content store") from None
    with f:
        actual, actual_diff, size = layer_digests(f, f"layer {blob_digest}")
    if actual != blob_digest:
        raise StoreCorrupted(f"layer blob {blob_digest}", blob_digest, actual)
    if diff_id and actual_diff != diff_id:
        raise StoreCorrupted(f"layer {diff_id} (blob {blob_digest})", diff_id, actual_diff)
    return size


def check_stored_blob(store, digest):
    """Check a stored blob (a config) against its digest before it is served."""
    try:
        f = open(store.content.path(digest), "rb")
    except FileNotFoundError:
        raise PyctrError(f"blob {digest} is missing from the content store") from None
    with f:
        reader = VerifyingReader(f, digest, f"blob {digest}")
        reader.finish()


class VerifyingReader:
    """Reads f, hashing; finish() reads what is left and checks the digest and the length."""

    def __init__(self, f, expected, what):
        self.f, self.expected, self.what = f, expected, what
        self.h = hashlib.sha256()

    def read(self, n=-1):
        """Up to n bytes, fewer only at the end (tarfile takes a short read for the end of data,
        and a decompressor returns what one block gives)."""
        data = self.f.read(n)
        if n is not None and 0 < len(data) < n:
            parts, got = [data], len(data)
            while got < n:
                more = self.f.read(n - got)
                if not more:
                    break
                parts.append(more)
                got += len(more)
            data = b"".join(parts)
        self.h.update(data)
        return data

    def finish(self):
        while self.read(_CHUNK):
            pass
        actual = "sha256:" + self.h.hexdigest()
        if actual != self.expected:
            raise StoreCorrupted(self.what, self.expected, actual)


def add_verified(tf, arcname, f, size, expected, what):
    """Add size bytes of f to the tar stream tf as arcname, failing unless they hash to expected."""
    import tarfile
    import time
    info = tarfile.TarInfo(arcname)
    info.size, info.mode, info.mtime = size, 0o644, int(time.time())
    reader = VerifyingReader(f, expected, what)
    try:
        tf.addfile(info, reader)
    except OSError as e:
        if "unexpected end of data" not in str(e):
            raise
        reader.finish()  # the content is short: a digest mismatch says so best
        raise
    if reader.read(1):  # longer than recorded: the tar entry would be cut short, whatever the hash
        reader.finish()
        raise StoreCorrupted(what, expected, f"content longer than its recorded size {size}")
    reader.finish()
