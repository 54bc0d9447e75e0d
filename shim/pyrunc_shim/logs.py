"""Container output written by the shim itself: Docker's json-file and CRI's k8s-file formats,
rotated by size (path -> path.1 -> ... -> path.<max_files-1>). One writer serves both streams of a
process under a lock, so rotation happens between entries and no line is lost or split."""
import json
import os
import threading
import time

_encode = json.encoder.encode_basestring  # C-accelerated: one call per line
_MAX_LINE = 16 * 1024  # a longer line is cut into partial entries, as Docker and conmon do


def _rfc3339nano(t, local):
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
    def __init__(self, path, fmt="k8s-file", max_size=0, max_files=1):
        if fmt not in ("k8s-file", "json-file"):
            raise ValueError(f"log format {fmt!r}: expected k8s-file or json-file")
        self.path = path
        self.fmt = fmt
        self.max_size = max_size
        self.max_files = max(1, max_files)
        self._lock = threading.Lock()
        self._partial = {}
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o640)
        self._size = os.fstat(self._fd).st_size

    def _entry(self, stream, line, full, ts):
        if self.fmt == "k8s-file":
            return f"{ts} {stream} {'F' if full else 'P'} ".encode() + line + b"\n"
        text = line.decode("utf-8", "replace") + ("\n" if full else "")
        return f'{{"log":{_encode(text)},"stream":"{stream}","time":"{ts}"}}\n'.encode()

    def write(self, stream, data):
        """Append data (any chunk of a stream): complete lines become entries; a trailing partial
        line waits for its end (or is flushed as a partial entry past 16 KiB)."""
        ts = _rfc3339nano(time.time(), self.fmt == "k8s-file")
        with self._lock:
            buf = self._partial.pop(stream, b"") + data
            lines = buf.split(b"\n")
            rest = lines.pop()
            entries = [self._entry(stream, ln, True, ts) for ln in lines]
            while len(rest) > _MAX_LINE:
                entries.append(self._entry(stream, rest[:_MAX_LINE], False, ts))
                rest = rest[_MAX_LINE:]
            if rest:
                self._partial[stream] = rest
            self._append(entries)

    def flush(self, stream):
        with self._lock:
            rest = self._partial.pop(stream, b"")
            if rest:
                ts = _rfc3339nano(time.time(), self.fmt == "k8s-file")
                self._append([self._entry(stream, rest, False, ts)])

    def _append(self, entries):
        if not entries:
            return
        if self.max_size <= 0:
            self._write(b"".join(entries))
            return
        batch = []
        size = self._size
        for e in entries:
            if size + len(e) > self.max_size and size > 0:
                self._write(b"".join(batch))
                batch = []
                self._rotate()
                size = 0
            batch.append(e)
            size += len(e)
        self._write(b"".join(batch))

    def _write(self, data):
        view = memoryview(data)
        while view:
            n = os.write(self._fd, view)
            view = view[n:]
        self._size += len(data)

    def _rotate(self):
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
            os.close(self._fd)
            self._fd = -1
