"""A process's stdio: the shim owns pipes (or the pty master) between the container and whatever
containerd or the user asked for, so the container outlives any reader. Output goes to sinks:
containerd's fifos, file:// and binary:// URIs, log files, attach clients. Terminals arrive through
a console socket (the runtime sends the pty master with SCM_RIGHTS)."""
import fcntl
import os
import select
import socket
import struct
import subprocess
import termios
import threading

from pyrunc_shim import attach as attach_mod
from pyrunc_shim.errors import invalid

_CHUNK = 1 << 16


class _FdSink:
    def __init__(self, fd):
        self.fd = fd

    def write(self, data):
        if self.fd < 0:
            return
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self.fd, view):]
        except OSError:  # the reader went away for good: keep draining the container
            self.close()

    def close(self):
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class _LogSink:
    def __init__(self, writer, stream):
        self.writer, self.stream = writer, stream

    def write(self, data):
        self.writer.write(self.stream, data)

    def close(self):
        self.writer.flush(self.stream)


class _AttachSink:
    def __init__(self, server, stream):
        self.server, self.stream = server, stream

    def write(self, data):
        self.server.broadcast(self.stream, data)

    def close(self):
        pass


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
    """One output destination -> a sink (or None for "discard")."""
    if not uri:
        return None
    u = _urlparse(uri)
    if u.scheme == "file":
        os.makedirs(os.path.dirname(u.path), exist_ok=True)
        return _FdSink(os.open(u.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o640))
    if u.scheme == "binary":
        return binaries.sink(u, stream, env)
    if u.scheme in ("", "fifo"):
        # O_RDWR: never blocks on open, and a reader that comes and goes cannot make writes fail
        return _FdSink(os.open(u.path or uri, os.O_RDWR | os.O_CLOEXEC))
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
            self.reaper.kick()
            for fd in (out_r, err_r, ready_w):
                os.close(fd)
            os.read(ready_r, 1)  # EOF once the logger closed fd 5
            os.close(ready_r)
            self.fds = {"stdout": out_w, "stderr": err_w}
        return _FdSink(self.fds.pop(stream))


class _Copier:
    """One output copier's pipe (or pty master), as drain() sees it."""

    def __init__(self, fd):
        self.fd = fd
        self.cond = threading.Condition()

    def drained(self):
        """Nothing left unread (called with cond held: fd is not closed under us)."""
        if self.fd < 0:
            return True
        try:
            return struct.unpack("i", fcntl.ioctl(self.fd, termios.FIONREAD, b"\0\0\0\0"))[0] == 0
        except OSError:
            return True


class ProcessIO:
    """stdin/stdout/stderr of one container process. runtime_fds() are handed to the runtime command
    (create or exec); start_copy() starts the copiers once the runtime has them."""

    def __init__(self, reaper, stdin="", stdout="", stderr="", terminal=False, env=None,
                 log_writer=None, attach=None, stdin_open=False):
        self.terminal = terminal
        self.stdin_uri, self.stdout_uri, self.stderr_uri = stdin, stdout, stderr
        self._binaries = _BinaryLogger(reaper)
        self.sinks = {"stdout": [], "stderr": []}
        for stream, uri in (("stdout", stdout), ("stderr", stderr)):
            s = _open_uri(uri, stream, env, self._binaries)
            if s is not None:
                self.sinks[stream].append(s)
            if log_writer is not None:
                self.sinks[stream].append(_LogSink(log_writer, stream))
        self.attach = attach
        if attach is not None:
            self.sinks["stdout"].append(_AttachSink(attach, attach_mod.STDOUT))
            self.sinks["stderr"].append(_AttachSink(attach, attach_mod.STDERR))
        self._threads = []
        self._copiers = []
        self._stdin_w = -1
        self._stdin_lock = threading.Lock()
        self.console = -1
        self.console_socket = None
        self._child_fds = []
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
        want_stdin = bool(stdin) or stdin_open
        if want_stdin:
            r, self._stdin_w = os.pipe()
            os.set_inheritable(r, False)
            in_fd = r
        else:
            in_fd = os.open(os.devnull, os.O_RDONLY)
        self._out_r, out_w = os.pipe()
        self._err_r, err_w = os.pipe()
        self._child_fds = [in_fd, out_w, err_w]
        self.fds = (in_fd, out_w, err_w)

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
            self._stdin_w = os.dup(self.console)
            self._spawn(self._copy_out, os.dup(self.console), "stdout")
        else:
            self._spawn(self._copy_out, self._out_r, "stdout")
            self._spawn(self._copy_out, self._err_r, "stderr")
        if self.stdin_uri:
            self._spawn(self._copy_in, self.stdin_uri)

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
        for ss in self.sinks.values():
            for s in ss:
                s.close()

    def _spawn(self, fn, *args):
        if fn == self._copy_out:
            self._copiers.append(_Copier(args[0]))
            args += (self._copiers[-1],)
        t = threading.Thread(target=fn, args=args, daemon=True)
        t.start()
        if fn == self._copy_out:
            self._threads.append(t)

    def _copy_out(self, fd, stream, copier):
        sinks = self.sinks[stream]
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        try:
            while True:
                poller.poll()
                # a chunk is read and written out under the lock: drain() never sees the pipe
                # empty while what came out of it is still on its way to the sinks
                with copier.cond:
                    try:
                        data = os.read(fd, _CHUNK)
                    except OSError:  # EIO: the pty's last slave closed
                        break
                    if not data:
                        break
                    for s in sinks:
                        s.write(data)
                    copier.cond.notify_all()
        finally:
            with copier.cond:
                copier.fd = -1
                os.close(fd)
                copier.cond.notify_all()
            for s in sinks:
                s.close()
            if self.terminal:  # one copier carries both streams of a pty
                for s in self.sinks["stderr"]:
                    s.close()

    def _copy_in(self, uri):
        path = _urlparse(uri).path or uri
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)  # blocks until the client opens its end
        except OSError:
            return
        try:
            while True:
                data = os.read(fd, _CHUNK)
                if not data:
                    break
                self.write_stdin(data)
        except OSError:
            pass
        finally:
            os.close(fd)
            if not self.terminal:
                self.close_stdin()

    def write_stdin(self, data):
        with self._stdin_lock:
            if self._stdin_w < 0:
                return
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(self._stdin_w, view):]
            except OSError:
                pass

    def close_stdin(self):
        with self._stdin_lock:
            if self._stdin_w >= 0:
                if self.terminal:
                    os.write(self._stdin_w, b"\x04")  # EOF on a tty is ^D, the master stays open
                else:
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
        for t in self._threads:
            t.join(timeout)
        return not any(t.is_alive() for t in self._threads)

    def close(self):
        with self._stdin_lock:
            if self._stdin_w >= 0:
                os.close(self._stdin_w)
                self._stdin_w = -1
        if self.console >= 0:
            os.close(self.console)
            self.console = -1
        for ss in self.sinks.values():
            for s in ss:
                s.close()
