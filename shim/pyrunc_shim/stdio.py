"""A process's stdio: the shim owns pipes (or the pty master) between the container and whatever
containerd asked for, so the container outlives any reader. Output goes to one sink per stream:
containerd's fifos, file:// and binary:// URIs; stdin comes from containerd's fifo. Terminals arrive
through a console socket (the runtime sends the pty master with SCM_RIGHTS).

Every copy is a pump.Pump (non-blocking, one pending chunk) driven by a thread inside an activity
section; export() gives the fds and pending bytes to the lean mode, which copies the same way, and
restore() takes them back."""
import fcntl
import os
import select
import socket
import struct
import subprocess
import termios
import threading

from pyrunc_shim.activity import Activity
from pyrunc_shim.errors import invalid
from pyrunc_shim.pump import WRITE, Pump


class _PathURI:
    scheme = query = ""

    def __init__(self, path):
        self.path = path


def _urlparse(uri):
    """A plain absolute path (what containerd sends for fifos) parses to itself without
    urllib.parse, which pulls ipaddress and more into every idle shim."""
    if uri.startswith("/") and "?" not in uri and "#" not in uri:
        return _PathURI(uri)
    import urllib.parse
    return urllib.parse.urlparse(uri)


def _open_uri(uri, stream, env, binaries):
    """One output destination -> an fd to write to (-1: discard)."""
    if not uri:
        return -1
    u = _urlparse(uri)
    if u.scheme == "file":
        os.makedirs(os.path.dirname(u.path), exist_ok=True)
        return os.open(u.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o640)
    if u.scheme == "binary":
        return binaries.sink(u, stream, env)
    if u.scheme in ("", "fifo"):
        # O_RDWR: never blocks on open, and a reader that comes and goes cannot make writes fail
        return os.open(u.path or uri, os.O_RDWR | os.O_CLOEXEC)
    raise invalid(f"stdio URI {uri!r}: unsupported scheme {u.scheme!r} (fifo path, file://, binary://)")


class _BinaryLogger:
    """containerd's binary logging: the logger gets stdout on fd 3, stderr on fd 4 and closes fd 5
    when ready; one logger process serves both streams of a process."""

    def __init__(self, reaper):
        self.reaper = reaper
        self.proc = None
        self.fds = {}

    def sink(self, u, stream, env):
        if self.proc is None:
            out_r, out_w = os.pipe()
            err_r, err_w = os.pipe()
            ready_r, ready_w = os.pipe()
            import urllib.parse
            args = [u.path] + [f"{k}={v}" if v else k for k, vs in urllib.parse.parse_qs(
                u.query, keep_blank_values=True).items() for v in vs]

            def fds():
                os.dup2(out_r, 3)
                os.dup2(err_r, 4)
                os.dup2(ready_w, 5)
            self.proc = subprocess.Popen(args, preexec_fn=fds, env=env, close_fds=False,
                                         stdin=subprocess.DEVNULL)
            self.proc.returncode = 0  # the reaper waits for it, never Popen
            self.reaper.kick()
            for fd in (out_r, err_r, ready_w):
                os.close(fd)
            os.read(ready_r, 1)  # EOF once the logger closed fd 5
            os.close(ready_r)
            self.fds = {"stdout": out_w, "stderr": err_w}
        return self.fds.pop(stream)


class _Copier:
    """A pump and the thread that drives it; cond is held while a chunk moves, so drain() never
    sees the source empty while what came out of it is still on its way to the sink."""

    def __init__(self, pump, stream):
        self.pump, self.stream = pump, stream
        self.cond = threading.Condition()
        self.thread = None

    def drained(self):
        """Nothing left unread or unwritten (called with cond held)."""
        if self.pump.src < 0:
            return True
        if self.pump.pending and self.pump.dst >= 0:
            return False
        try:
            return struct.unpack("i", fcntl.ioctl(self.pump.src, termios.FIONREAD, b"\0\0\0\0"))[0] == 0
        except OSError:
            return True


def _nonblocking(*fds):
    for fd in fds:
        if fd >= 0:
            os.set_blocking(fd, False)


class ProcessIO:
    """stdin/stdout/stderr of one container process. runtime_fds() are handed to the runtime command
    (create or exec); after_runtime() starts the copying once the runtime has them."""

    def __init__(self, reaper, stdin="", stdout="", stderr="", terminal=False, env=None, activity=None,
                 owner=(0, 0)):
        self.activity = activity or Activity()
        self.terminal = terminal
        self.stdin_uri, self.stdout_uri, self.stderr_uri = stdin, stdout, stderr
        self.settled = False  # the runtime has the child's ends and the copying runs (or was aborted)
        self._copiers = []
        self._stdin = None           # the stdin pump (fifo -> stdin_w) and its lock
        self._stdin_w = -1
        self._stdin_lock = threading.Lock()
        self.console = -1
        self._term_err = -1          # a terminal's stderr sink: nothing goes there, closed at EOF
        self.console_socket = None
        self._child_fds = []
        if reaper is None:  # restore() fills the rest
            return
        binaries = _BinaryLogger(reaper)
        self._sinks = {}
        try:
            for stream, uri in (("stdout", stdout), ("stderr", stderr)):
                self._sinks[stream] = _open_uri(uri, stream, env, binaries)
        except BaseException:
            for fd in self._sinks.values():
                if fd >= 0:
                    os.close(fd)
            raise
        if terminal:
            import tempfile  # terminals only: tempfile pulls shutil, random and hashlib
            self._tmp = tempfile.mkdtemp(prefix="pyrunc-shim-console-")
            self.console_socket = os.path.join(self._tmp, "console.sock")
            self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self._listener.bind(self.console_socket)
            self._listener.listen(1)
            self._child_fds = [os.open(os.devnull, os.O_RDWR)] * 1
            self.fds = (self._child_fds[0],) * 3
            return
        if stdin:
            r, self._stdin_w = os.pipe()
            in_fd = r
        else:
            in_fd = os.open(os.devnull, os.O_RDONLY)
        self._out_r, out_w = os.pipe()
        self._err_r, err_w = os.pipe()
        self._child_fds = [in_fd, out_w, err_w]
        self.fds = (in_fd, out_w, err_w)
        if owner != (0, 0):
            self._chown_pipes(owner)

    def _chown_pipes(self, owner):
        """The options' IoUid/IoGid (go-runc's NewPipeIO): a container whose user is not root (in
        the host's view: a user namespace) can then reopen its stdio through /proc/self/fd."""
        try:
            for fd in self._child_fds[1:] + ([self._child_fds[0]] if self.stdin_uri else []):
                os.fchown(fd, *owner)
        except OSError as e:
            self.abort()
            raise invalid(f"chown stdio pipes to {owner[0]}:{owner[1]}: {e.strerror}") from None

    def runtime_fds(self):
        return self.fds

    def after_runtime(self):
        """The runtime has passed our fds to the container: drop our copies of its ends, receive the
        pty master, start copying."""
        for fd in set(self._child_fds):
            os.close(fd)
        self._child_fds = []
        if self.terminal:
            self._listener.settimeout(60)
            conn, _ = self._listener.accept()
            _msg, fds, _flags, _addr = socket.recv_fds(conn, 4096, 1)
            conn.close()
            self._listener.close()
            os.unlink(self.console_socket)
            os.rmdir(self._tmp)
            if not fds:
                raise invalid("console socket: the runtime sent no pty master")
            self.console = fds[0]
            os.set_blocking(self.console, False)
            self._stdin_w = os.dup(self.console)
            self._term_err = self._sinks["stderr"]
            self._copiers.append(_Copier(Pump(os.dup(self.console), self._sinks["stdout"]), "stdout"))
        else:
            for stream, src in (("stdout", self._out_r), ("stderr", self._err_r)):
                self._copiers.append(_Copier(Pump(src, self._sinks[stream]), stream))
        for c in self._copiers:
            _nonblocking(c.pump.src, c.pump.dst)
        if self.stdin_uri:
            _nonblocking(self._stdin_w)
            path = _urlparse(self.stdin_uri).path or self.stdin_uri
            # non-blocking: the open returns before the client opens its end (poll reports no
            # hang-up until a writer has come and gone)
            src = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
            self._stdin = Pump(src, self._stdin_w, owns_dst=False)
        self.settled = True
        self._start_threads()

    def _start_threads(self):
        for c in self._copiers:
            c.thread = threading.Thread(target=self._copy_out, args=(c,), daemon=True)
            c.thread.start()
        if self._stdin is not None:
            threading.Thread(target=self._copy_in, args=(self._stdin,), daemon=True).start()

    def abort(self):
        """The runtime command failed: close everything."""
        for fd in set(self._child_fds):
            os.close(fd)
        self._child_fds = []
        if self.terminal:
            self._listener.close()
            try:
                os.unlink(self.console_socket)
                os.rmdir(self._tmp)
            except OSError:
                pass
        else:
            os.close(self._out_r)
            os.close(self._err_r)
        self.close_stdin()
        for fd in self._sinks.values():
            if fd >= 0:
                os.close(fd)
        self._sinks = {}
        self.settled = True

    def _copy_out(self, c):
        pump = c.pump
        poller = select.poll()
        while True:
            with c.cond:
                want = pump.wants()
            if want is None:
                break
            poller.register(*want)
            try:
                # a sink that stays full is looked at again each second: close() may drop it
                poller.poll(1000 if want[1] == WRITE else None)
            finally:
                poller.unregister(want[0])
            with self.activity.section, c.cond:
                alive = pump.step()
                c.cond.notify_all()
            if not alive:
                break
        with c.cond:
            c.cond.notify_all()
        if self.terminal:  # one pump carries both streams of a pty
            self._close_term_err()

    def _close_term_err(self):
        with self._stdin_lock:
            if self._term_err >= 0:
                os.close(self._term_err)
                self._term_err = -1

    def _copy_in(self, pump):
        poller = select.poll()
        while True:
            with self._stdin_lock:
                want = pump.wants()
            if want is None:
                return
            poller.register(*want)
            try:
                poller.poll(1000 if want[1] == WRITE else None)
            finally:
                poller.unregister(want[0])
            with self.activity.section, self._stdin_lock:
                if pump.step():
                    continue
                if not self.terminal:  # EOF on the fifo is EOF on the container's stdin
                    self._close_stdin_locked()

    def close_stdin(self):
        with self._stdin_lock:
            if self._stdin_w >= 0 and self.terminal:
                try:
                    os.write(self._stdin_w, b"\x04")  # EOF on a tty is ^D, the master stays open
                except OSError:
                    pass
            else:
                self._close_stdin_locked()

    def _close_stdin_locked(self):
        if self._stdin is not None:
            self._stdin.dst = -1
            self._stdin.pending = b""
        if self._stdin_w >= 0:
            os.close(self._stdin_w)
            self._stdin_w = -1

    def resize(self, width, height):
        if self.console < 0:
            raise invalid("resize: the process has no terminal")
        fcntl.ioctl(self.console, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))

    def drain(self, timeout):
        """Wait until what the process wrote before now has reached the sinks (not for EOF: a
        process that inherited the pipes may hold them for ever). After the process exited, this
        is all it will ever write itself: its exit may be told then, and a client that stops
        reading when it learns of the exit (ctr closes its fifos) has every byte."""
        import time
        deadline = time.monotonic() + timeout
        for c in self._copiers:
            with c.cond:
                if not c.cond.wait_for(c.drained, max(0.0, deadline - time.monotonic())):
                    return False
        return True

    def wait(self, timeout):
        """Wait for the output to be drained (the container and everything holding its stdio exited)."""
        for c in self._copiers:
            if c.thread is not None:
                c.thread.join(timeout)
        return not any(c.thread is not None and c.thread.is_alive() for c in self._copiers)

    def close(self):
        with self._stdin_lock:
            self._close_stdin_locked()
            if self._term_err >= 0:
                os.close(self._term_err)
                self._term_err = -1
        if self.console >= 0:
            os.close(self.console)
            self.console = -1
        for c in self._copiers:
            with c.cond:
                c.pump.drop_dst()

    # -- handover -------------------------------------------------------------------------------
    def export(self):
        """-> this io's part of the handover state (handover.py names its fds); only a settled io
        (copying) can be handed over."""
        out = [[c.stream] + c.pump.export() for c in self._copiers if c.pump.src >= 0]
        stdin = self._stdin.export() if self._stdin is not None and self._stdin.src >= 0 else None
        return {"terminal": self.terminal, "uris": [self.stdin_uri, self.stdout_uri, self.stderr_uri],
                "console": self.console, "stdin_w": self._stdin_w, "term_err": self._term_err,
                "out": out, "in": stdin}

    @classmethod
    def restore(cls, st, activity):
        io = cls(None, *st["uris"], terminal=st["terminal"], activity=activity)
        io.console, io._stdin_w, io._term_err = st["console"], st["stdin_w"], st["term_err"]
        for stream, *pump in st["out"]:
            io._copiers.append(_Copier(Pump.restore(pump), stream))
        if st["in"] is not None:
            io._stdin = Pump.restore(st["in"])
        io.settled = True
        io._start_threads()
        return io
