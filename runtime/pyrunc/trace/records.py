"""The trace file's lines, written by a process of their own.

The tracer hands over raw records (marshal'd batches over a pipe) and this process turns them into
JSON lines: on a busy trace the tracer is the bottleneck (the tracee waits at every stop until it is
resumed), so what can be done elsewhere -- formatting, file writes -- runs here, on another CPU.
A batch is a list of items: a str is a line already made (signals, exits, the first execve), a
tuple is one syscall: (pid, ret or None, is_error, time, arch, nr, name or None, args), args a str
of JSON values or a list of integers.
"""
import marshal
import os
import struct

from pyrunc.trace.decode import ERRNO_NAMES

_LENGTH = struct.Struct("=I")
MAX_ERRNO = 4095


class Sender:
    """The tracer's end: batches flushed by count or age (a quiet container's records still show)."""

    def __init__(self, fd, batch_size=1024, max_age=0.2):
        self.fd, self.batch_size, self.max_age = fd, batch_size, max_age
        self.batch = []
        self.since = 0.0

    def add(self, item, now):
        self.batch.append(item)
        if len(self.batch) >= self.batch_size or now - self.since > self.max_age:
            self.flush(now)

    def flush(self, now=0.0):
        if self.batch:
            data = marshal.dumps(self.batch)
            os.write(self.fd, _LENGTH.pack(len(data)))
            view = memoryview(data)
            while view:
                view = view[os.write(self.fd, view):]
            self.batch = []
        self.since = now


def _read_exactly(fd, size):
    data = b""
    while len(data) < size:
        chunk = os.read(fd, size - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def line(item):
    if type(item) is str:
        return item
    pid, ret, is_error, then, arch, nr, name, args = item
    if type(args) is not str:
        args = ",".join(map(str, args))
    name = f'"{name}"' if name else "null"
    if ret is None:
        return f'{{"time":{then:.6f},"pid":{pid},"arch":"{arch}","nr":{nr},"syscall":{name},"args":[{args}],"ret":null}}\n'
    errno_part = f',"errno":"{ERRNO_NAMES.get(-ret, -ret)}"' if is_error and -MAX_ERRNO <= ret < 0 else ""
    return (f'{{"time":{then:.6f},"pid":{pid},"arch":"{arch}","nr":{nr},"syscall":{name},"args":[{args}],'
            f'"ret":{ret}{errno_part}}}\n')


def write_all(in_fd, out):
    """Until the tracer closes its end (it finished, or was killed): batches in, lines out."""
    while True:
        header = _read_exactly(in_fd, _LENGTH.size)
        if header is None:
            break
        data = _read_exactly(in_fd, _LENGTH.unpack(header)[0])
        if data is None:
            break  # the tracer died in the middle of a batch: what came before is written
        out.write("".join(map(line, marshal.loads(data))).encode())
    out.flush()
