"""Blob downloads from a registry into the content store, readable while they are written.

A blob streams from the response into an ingest file through one reused buffer (readinto, the
hash and the write all take memoryviews: no per-chunk copy), and is filed under blobs/ only once
its size and digest match its descriptor (content.py). A `Download` can be followed: `reader()`
gives the bytes as they land, so a pull extracts a layer while it downloads; the reader reports
end-of-file only after the whole blob was verified and filed, and raises the download's error
instead if it failed, so nothing built from a bad blob can look finished.
"""
import io
import os
import threading

from pyctr.errors import DigestMismatch, PyctrError, RegistryError
from pyctr.image import digest as _digest
from pyctr.image.httpconn import IncompleteRead
from pyctr.image.registry import Cancelled, describe_oserror

CHUNK = 1 << 20
__all__ = ["Cancelled", "Download", "fetch", "checked_size"]


def checked_size(desc, what):
    """The descriptor's size: it must have one (an int >= 0), as a download writes no more."""
    size = desc.get("size") if isinstance(desc, dict) else None
    if type(size) is not int or size < 0:
        raise PyctrError(f"{what}: the descriptor's size {size!r} is not a non-negative integer "
                         f"(a blob is downloaded only up to its declared size)")
    return size


class Download:
    """One blob from client into store (run() in a worker thread); at most one reader follows it."""

    def __init__(self, client, store, desc, what="blob", progress=None, cancel=None):
        self.client, self.store, self.progress = client, store, progress
        self.digest = _digest.check(desc.get("digest"), what)
        _digest.split(self.digest)
        self.what = f"{what} {self.digest}"
        self.size = checked_size(desc, self.what)
        self.cancel = cancel or threading.Event()
        self._cond = threading.Condition()
        self._fd = None        # read fd on the ingest file, for the reader (survives the rename)
        self._written = 0
        self._state = "pending"  # -> "running" -> "done" (filed) | "present" (was there) | "failed"
        self._error = None
        self._followed = False
        self._resumes = 0

    # --- the download ------------------------------------------------------------------------------

    def run(self):
        try:
            self._run()
        except BaseException as e:
            with self._cond:
                self._state, self._error = "failed", e
                self._close_fd()
                self._cond.notify_all()
            raise

    def _run(self):
        if self.store.content.has(self.digest):
            self._set("present")
            self._say(status="Already exists")
            return
        if self.cancel.is_set():
            raise Cancelled(f"download of {self.what} cancelled")
        resp = self.client.get_blob(self.digest)
        complete = False
        try:
            with self.store.content.writer(self.digest, self.what) as w:
                with self._cond:
                    self._fd = os.open(w.tmp, os.O_RDONLY | os.O_CLOEXEC)
                    self._state = "running"
                    self._cond.notify_all()
                self._copy(resp, w)
                complete = True
                w.commit()
        finally:
            if not complete:  # the rest of the body is still on the wire: the connection is unusable
                self.client.reset()
        self._set("done")
        self._say(status="Extracting" if self._followed else "Download complete")

    def _copy(self, resp, w):
        """The body into w in CHUNK-sized pieces: each is hashed and written once, as it fills."""
        size, done, eof = self.size, 0, False
        mv = memoryview(bytearray(CHUNK))
        while not eof:
            if self.cancel.is_set():
                raise Cancelled(f"download of {self.what} cancelled")
            filled = 0
            # one byte past the declared size at most: enough to tell the blob is too long
            want = min(CHUNK, size + 1 - done)
            while filled < want:
                try:
                    n = resp.readinto(mv[filled:want])
                    if not n and done + filled < size:
                        if resp.remaining is not None:  # the body's own length or last chunk
                            raise RegistryError(f"download of {self.what} from {resp.url}: the "
                                                f"registry sent {done + filled} of its {size} bytes")
                        # a body that ends where the server hangs up: it may have hung up early
                        raise IncompleteRead(f"the connection closed {size - done - filled} bytes "
                                             f"before the blob's end")
                except OSError as e:  # httpconn.IncompleteRead, timeouts, resets, an abort
                    if self.cancel.is_set():
                        raise Cancelled(f"download of {self.what} cancelled") from None
                    resp = self._resume(resp, done + filled, e)
                    continue
                if not n:
                    eof = True
                    break
                filled += n
            done += filled
            if done > size:
                raise DigestMismatch(self.what, f"{size} bytes", f"more than {size} bytes")
            if filled:
                w.write(mv[:filled])
                with self._cond:
                    self._written = done
                    self._cond.notify_all()
                if self.progress:
                    self.progress.update(self.digest, done=done, status="Downloading")

    def _resume(self, resp, offset, error):
        """The rest of the blob from offset after its connection broke: a ranged GET, as Docker
        resumes a layer, a few times with backoff. A timeout is not retried: a stalled registry
        fails in bounded time."""
        import socket
        from pyctr.image.registry import RETRY_DELAYS
        what = (f"download of {self.what} from {getattr(resp, 'url', '?')} interrupted after {offset} "
                f"bytes: {describe_oserror(error)}")
        self.client.reset()
        if isinstance(error, (socket.timeout, TimeoutError)) or self._resumes >= len(RETRY_DELAYS):
            raise RegistryError(what) from None
        self.client.pause(RETRY_DELAYS[self._resumes])
        self._resumes += 1
        new = self.client.get_blob(self.digest, offset)
        start = (new.getheader("Content-Range") or "").partition(" ")[2].partition("-")[0]
        if new.status != 206 or start != str(offset):
            new.close()
            raise RegistryError(f"{what}; the registry cannot resume it (HTTP {new.status} to a range "
                                f"request)") from None
        return new

    def _set(self, state):
        with self._cond:
            self._state = state
            self._close_fd()
            self._cond.notify_all()

    def _close_fd(self):
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _say(self, **kw):
        if self.progress:
            self.progress.update(self.digest, **kw)

    def wait(self):
        """Until the blob is filed (or was there); raises what made the download fail."""
        with self._cond:
            while self._state in ("pending", "running"):
                self._cond.wait()
            if self._state == "failed":
                raise self._error

    # --- following it ------------------------------------------------------------------------------

    def reader(self):
        return _Follower(self)

    def _take(self):
        """Wait until the blob is being written (its ingest fd, which the reader owns from now on)
        or is filed (None: read it from the content store)."""
        with self._cond:
            while True:
                if self._state == "failed":
                    raise self._error
                if self._state in ("done", "present"):
                    return None
                if self._state == "running":
                    self._followed = True
                    fd, self._fd = self._fd, None
                    return fd
                self._cond.wait()

    def _wait_for(self, pos):
        """Bytes written so far once more than pos are, or once the blob is finished."""
        with self._cond:
            while True:
                if self._state == "failed":
                    raise self._error
                if self._written > pos or self._state != "running":
                    return self._written, self._state != "running"
                self._cond.wait()


class _Follower(io.RawIOBase):
    """A raw binary file of the blob's bytes as the Download writes them (see the module doc)."""

    def __init__(self, download):
        super().__init__()
        self.dl = download
        self.fd, self.pos = None, 0

    def readable(self):
        return True

    def readinto(self, b):
        if self.fd is None:
            fd = self.dl._take()
            if fd is None:  # filed before we came: a plain file from here on
                fd = os.open(self.dl.store.content.path(self.dl.digest), os.O_RDONLY | os.O_CLOEXEC)
                self.dl = None
            self.fd = fd
        if self.dl is None:
            return os.readv(self.fd, [b])
        written, finished = self.dl._wait_for(self.pos)
        avail = written - self.pos
        if avail <= 0 and finished:
            return 0
        n = os.preadv(self.fd, [memoryview(b)[:min(len(b), avail)]], self.pos)
        if not n:
            raise PyctrError(f"{self.dl.what}: the ingest file is shorter than what was downloaded")
        self.pos += n
        return n

    def close(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        super().close()


def fetch(client, store, desc, what="blob", progress=None, cancel=None):
    """Download desc into the content store (verified); a no-op if it is there already."""
    Download(client, store, desc, what, progress, cancel).run()
