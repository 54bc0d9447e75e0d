"""Content-addressed blob store: <root>/content/blobs/sha256/<hex>, written through ingest/.

A blob only ever appears under blobs/ after its bytes hashed to the digest it is filed under
(tmp file in ingest/, fsync, rename), so an interrupted or corrupted download never looks present.
"""
import hashlib
import os

from pyctr.errors import DigestMismatch, PyctrError
from pyctr.image.digest import split
from pyctr.image.fsutil import listdir


class Writer:
    """File-like sink that hashes what it is given; commit() verifies and files it."""

    def __init__(self, store, expected=None, what="blob"):
        self.store, self.expected, self.what = store, expected, what
        fd_path = os.path.join(store.ingest, f"{os.getpid()}-{os.urandom(6).hex()}")
        self.tmp = fd_path
        # unbuffered: what write() returns from is in the file, where a reader following the
        # download (fetch.py) may read it at once
        self.f = open(fd_path, "xb", buffering=0)
        self.h = hashlib.sha256()
        self.size = 0

    def write(self, data):
        self.h.update(data)
        self.size += len(data)
        view = memoryview(data)
        while view:
            view = view[self.f.write(view):]

    def commit(self):
        digest = "sha256:" + self.h.hexdigest()
        os.fsync(self.f.fileno())
        self.f.close()
        if self.expected and digest != self.expected:
            os.unlink(self.tmp)
            raise DigestMismatch(self.what, self.expected, digest)
        dest = self.store.path(digest)
        if self.store.on_new is not None and not os.path.exists(dest):
            self.store.on_new(digest)  # into the store's journal, before the blob exists
        os.rename(self.tmp, dest)
        return digest

    def abort(self):
        if not self.f.closed:
            self.f.close()
        try:
            os.unlink(self.tmp)
        except FileNotFoundError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *_):
        if exc_type is not None:
            self.abort()


class ContentStore:
    def __init__(self, root):
        self.root = os.path.join(root, "content")
        self.blobs = os.path.join(self.root, "blobs", "sha256")
        self.ingest = os.path.join(self.root, "ingest")
        self.on_new = None  # called with a blob's digest before it is first filed (store.py's journal)

    def create(self):
        os.makedirs(self.blobs, mode=0o700, exist_ok=True)
        os.makedirs(self.ingest, mode=0o700, exist_ok=True)

    def digests(self):
        return ["sha256:" + n for n in listdir(self.blobs)]

    def path(self, digest):
        return os.path.join(self.blobs, split(digest)[1])

    def has(self, digest):
        return os.path.exists(self.path(digest))

    def size(self, digest):
        return os.stat(self.path(digest)).st_size

    def read(self, digest):
        try:
            with open(self.path(digest), "rb") as f:
                return f.read()
        except FileNotFoundError:
            raise PyctrError(f"blob {digest} is missing from the content store {self.blobs}") from None

    def put(self, data, expected=None, what="blob"):
        with self.writer(expected, what) as w:
            w.write(data)
            return w.commit()

    def writer(self, expected=None, what="blob"):
        return Writer(self, expected, what)

    def delete(self, digest):
        try:
            os.unlink(self.path(digest))
        except FileNotFoundError:
            pass

    def clean_ingest(self):
        """Remove leftovers of interrupted downloads (called under the store lock)."""
        for name in os.listdir(self.ingest):
            try:
                os.unlink(os.path.join(self.ingest, name))
            except OSError:
                pass
