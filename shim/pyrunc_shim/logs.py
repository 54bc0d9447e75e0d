"""Container output written by the shim itself: Docker's json-file and CRI's k8s-file formats,
rotated by size (path -> path.1 -> ... -> path.<max_files-1>; with one file it is truncated, as
conmon does). One writer serves both streams of a process under a lock, so rotation happens
between entries and no line is lost or split.

Speed: a chunk of output becomes its entries in a few C-level passes (split, join, and for
json-file a map of _json's escaper), never a Python call per line: a fast writer and a few
hundred thousand lines a second matter more here than anywhere else in the shim. Imports only
C modules (no json, threading or time package cost for the daemonless monitor)."""
import os
import time
from _json import encode_basestring as _encode  # the json package would import re
from _operator import add as _add
from _thread import allocate_lock
from itertools import repeat

MAX_LINE = 16 * 1024  # a longer line is cut into partial entries, as Docker and conmon do
FORMATS = ("k8s-file", "json-file")


def rfc3339nano(t, local):
    if local:
        lt = time.localtime(t)
        off = lt.tm_gmtoff
        sign = "+" if off >= 0 else "-"
        off = abs(off)
        tz = f"{sign}{off // 3600:02d}:{off % 3600 // 60:02d}"
    else:
        lt = time.gmtime(t)
        tz = "Z"
    return time.strftime("%Y-%m-%dT%H:%M:%S", lt) + f".{int(t % 1 * 1e9):09d}" + tz


class LogWriter:
    def __init__(self, path, fmt="k8s-file", max_size=0, max_files=1, sync=True):
        if fmt not in FORMATS:
            raise ValueError(f"log format {fmt!r}: expected k8s-file or json-file")
        self.path = path
        self.fmt = fmt
        self.max_size = max_size
        self.max_files = max(1, max_files)
        self.sync = sync
        self._lock = allocate_lock()
        self._partial = {}
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o640)
        self._size = os.fstat(self._fd).st_size

    # -- formatting -----------------------------------------------------------------------------
    def _ts(self):
        return rfc3339nano(time.time(), self.fmt == "k8s-file")

    def _entries(self, stream, lines, full, ts):
        """Entries for lines (bytes, without their newline), all full or all partial -> bytes."""
        if not lines:
            return b""
        if self.fmt == "k8s-file":
            prefix = f"{ts} {stream} {'F' if full else 'P'} ".encode()
            return prefix + (b"\n" + prefix).join(lines) + b"\n"
        # {"log":"<line>\n","stream":"stdout","time":"..."} per line: the escaper is mapped over the
        # lines (newline appended first, inside the string, as Docker keeps it)
        texts = [ln.decode("utf-8", "replace") for ln in lines] if len(lines) < 4 else \
            b"\n".join(lines).decode("utf-8", "replace").split("\n")
        if full:
            texts = map(_add, texts, repeat("\n"))
        tail = f',"stream":"{stream}","time":"{ts}"}}\n'
        return ('{"log":' + (tail + '{"log":').join(map(_encode, texts)) + tail).encode()

    def write(self, stream, data):
        """Append data (any chunk of a stream): complete lines become entries; a trailing partial
        line waits for its end (or is flushed as partial entries past 16 KiB)."""
        ts = self._ts()
        with self._lock:
            buf = self._partial.pop(stream, b"") + data if stream in self._partial else data
            end = buf.rfind(b"\n")
            if end < 0:
                lines, rest = [], buf
            else:
                lines, rest = buf[:end].split(b"\n"), buf[end + 1:]
            out = []
            if lines and (end < MAX_LINE or max(map(len, lines)) <= MAX_LINE):
                out.append(self._entries(stream, lines, True, ts))
            elif lines:
                for ln in lines:  # rare: a line longer than 16 KiB in this chunk
                    out.append(self._long(stream, ln, True, ts))
            if len(rest) > MAX_LINE:
                cut = len(rest) - len(rest) % MAX_LINE
                out.append(self._entries(stream, [rest[i:i + MAX_LINE] for i in range(0, cut, MAX_LINE)],
                                         False, ts))
                rest = rest[cut:]
            if rest:
                self._partial[stream] = rest
            self._append(b"".join(out))

    def _long(self, stream, line, full, ts):
        parts = [line[i:i + MAX_LINE] for i in range(0, len(line), MAX_LINE)] or [b""]
        return self._entries(stream, parts[:-1], False, ts) + self._entries(stream, parts[-1:], full, ts)

    def flush(self, stream):
        """The stream ended: its unterminated last line becomes a partial entry."""
        with self._lock:
            rest = self._partial.pop(stream, b"")
            if rest:
                self._append(self._entries(stream, [rest], False, self._ts()))

    # -- files ----------------------------------------------------------------------------------
    def _append(self, data):
        if not data:
            return
        if self.max_size > 0:
            # every b"\n" in data ends an entry (a newline inside an entry is escaped or cut), so a
            # cut right after one never splits an entry
            while self._size + len(data) > self.max_size:
                cut = data.rfind(b"\n", 0, self.max_size - self._size) + 1
                if cut == 0:
                    if self._size > 0:
                        self._rotate()
                        continue
                    cut = data.find(b"\n") + 1 or len(data)  # one entry larger than the limit
                self._write(data[:cut])
                data = data[cut:]
                self._rotate()
            if not data:
                return
        self._write(data)

    def _write(self, data):
        view = memoryview(data)
        while view:
            n = os.write(self._fd, view)
            view = view[n:]
        self._size += len(data)

    def _rotate(self):
        if self.sync:
            os.fsync(self._fd)
        os.close(self._fd)
        if self.max_files > 1:
            for i in range(self.max_files - 1, 0, -1):
                src = self.path if i == 1 else f"{self.path}.{i - 1}"
                if os.path.exists(src):
                    os.replace(src, f"{self.path}.{i}")
            flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC
        else:
            flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND | os.O_CLOEXEC  # conmon: truncate
        self._fd = os.open(self.path, flags, 0o640)
        self._size = 0

    def reopen(self):
        with self._lock:
            os.close(self._fd)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o640)
            self._size = os.fstat(self._fd).st_size

    def close(self):
        for s in list(self._partial):
            self.flush(s)
        with self._lock:
            if self._fd >= 0:
                if self.sync:
                    os.fsync(self._fd)
                os.close(self._fd)
                self._fd = -1
