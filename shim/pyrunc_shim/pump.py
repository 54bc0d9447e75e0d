"""One direction of a process's stdio: bytes from a source fd to a destination fd, both non-blocking.
A chunk the destination cannot take at once stays pending, and the source is not read again until
it has gone out: the container blocks on a full pipe instead of the shim's memory growing, and the
order of the bytes is kept. A destination that fails for good (its reader went away) is dropped and
the source is still drained, so the container never blocks on a dead reader.

The full mode (stdio.py: a thread per pump) and the lean mode (lean.py: one epoll loop) copy through
this same class, and a pump's fds and pending bytes are what the handover between them carries.
Imports os alone: the lean mode loads it."""
import os

CHUNK = 1 << 16
READ, WRITE = 0x001, 0x004  # POLLIN/EPOLLIN, POLLOUT/EPOLLOUT (equal in poll and epoll)


class Pump:
    """owns_dst: the destination is closed with the pump (an output sink) or stays its owner's (a
    process's stdin, which CloseIO also closes)."""

    __slots__ = ("src", "dst", "pending", "owns_dst")

    def __init__(self, src, dst, pending=b"", owns_dst=True):
        self.src, self.dst, self.pending, self.owns_dst = src, dst, pending, owns_dst

    def wants(self):
        """-> (fd, READ or WRITE) to wait for before the next step(), or None once at EOF."""
        if self.pending and self.dst >= 0:
            return self.dst, WRITE
        if self.src >= 0:
            return self.src, READ
        return None

    def step(self):
        """Move what moves without blocking: the pending chunk, else one chunk read. -> False once
        the source is at EOF (its fd is closed then, and an owned destination too)."""
        if self.pending:
            self._flush()
            if self.pending:
                return True
        if self.src < 0:
            return False
        try:
            data = os.read(self.src, CHUNK)
        except (BlockingIOError, InterruptedError):
            return True
        except OSError:  # EIO: the pty's last slave closed
            data = b""
        if not data:
            os.close(self.src)
            self.src = -1
            self.drop_dst()
            return False
        self.pending = data
        self._flush()
        return True

    def _flush(self):
        if self.dst < 0:
            self.pending = b""
            return
        data = self.pending
        try:
            while data:
                data = data[os.write(self.dst, data):]
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:  # the reader is gone for good: keep draining the source into nothing
            data = b""
            self.drop_dst()
        self.pending = data

    def drop_dst(self):
        """Write no more (the fd is closed when owned)."""
        if self.dst >= 0 and self.owns_dst:
            os.close(self.dst)
        self.dst = -1
        self.pending = b""

    def export(self):
        return [self.src, self.dst, self.pending, self.owns_dst]

    @classmethod
    def restore(cls, v):
        return cls(*v)
