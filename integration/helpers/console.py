"""Terminals for tests: a console-socket receiver (like runc's recvtty) and a pty-driven session.

ConsoleSocket listens on a path, accepts the runtime's connection and receives the pty master
(SCM_RIGHTS, one fd, payload the pty name). PtySession runs a command with a fresh pty as its
controlling terminal and stdio, so `run`/`exec` in the foreground can be driven like a person would.
"""
import array
import fcntl
import os
import select
import socket
import struct
import subprocess
import termios
import threading
import time


def set_winsize(fd, rows, cols):
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def read_until(fd, needle, timeout=20, buffer=b""):
    """Read from fd until `needle` (bytes or str) is in what was read; returns everything read."""
    needle = needle.encode() if isinstance(needle, str) else needle
    deadline = time.monotonic() + timeout
    data = buffer
    while needle not in data:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"timed out waiting for {needle!r}; got {data!r}")
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                chunk = b""
            if not chunk:
                raise AssertionError(f"EOF while waiting for {needle!r}; got {data!r}")
            data += chunk
    return data


class ConsoleSocket:
    """A --console-socket receiver; .master (an fd) and .name once a runtime has sent them."""

    def __init__(self, path):
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(self.path)
        self.sock.listen(1)
        self.master = None
        self.name = None
        self.fd_count = None
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self):
        self.sock.settimeout(60)
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        with conn:
            fds = array.array("i")
            msg, ancdata, _, _ = conn.recvmsg(4096, socket.CMSG_SPACE(16 * fds.itemsize))
            for level, kind, data in ancdata:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    fds.frombytes(data[:len(data) - len(data) % fds.itemsize])
            self.fd_count = len(fds)
            self.name = msg.decode(errors="replace")
            if fds:
                self.master = fds[0]
                for extra in fds[1:]:
                    os.close(extra)

    def wait(self, timeout=30):
        self._thread.join(timeout)
        assert self.master is not None, f"no pty master received on {self.path}"
        return self.master

    def close(self):
        self.sock.close()
        if self.master is not None:
            os.close(self.master)
            self.master = None
        try:
            os.unlink(self.path)
        except OSError:
            pass


class PtySession:
    """argv run with a new pty as controlling terminal and stdio; .master is our end."""

    def __init__(self, argv, rows=24, cols=80, env=None):
        self.master, slave = os.openpty()
        set_winsize(slave, rows, cols)

        def child_setup():
            os.setsid()
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)
        self.proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, preexec_fn=child_setup,
                                     env=env, close_fds=True)
        os.close(slave)
        self.output = b""

    def expect(self, needle, timeout=30):
        self.output = read_until(self.master, needle, timeout, self.output)
        return self.output

    def send(self, text):
        os.write(self.master, text.encode() if isinstance(text, str) else text)

    def resize(self, rows, cols):
        set_winsize(self.master, rows, cols)  # the kernel sends SIGWINCH to the runtime

    def wait(self, timeout=60):
        code = self.proc.wait(timeout)
        # drain
        while True:
            ready, _, _ = select.select([self.master], [], [], 0.2)
            if not ready:
                break
            try:
                chunk = os.read(self.master, 65536)
            except OSError:
                break
            if not chunk:
                break
            self.output += chunk
        return code

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        os.close(self.master)
