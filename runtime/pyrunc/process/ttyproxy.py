"""Foreground `run`/`exec` with a terminal and no console socket: pyrunc itself holds the pty
master and copies between it and its own stdio, its terminal in raw mode, window size changes
forwarded (what runc's tty.go does), until the container's process exits."""
import os
import select
import _signal as signal

from pyrunc.process import console


def require_host_terminal():
    """A foreground terminal needs one on our side, as runc's initHostConsole: stderr, stdout or
    stdin, else the controlling terminal. Without any the container's shell would wait for ever on a
    pty nobody types into; runc fails at once, with these words."""
    if any(os.isatty(fd) for fd in (2, 1, 0)):
        return
    try:
        fd = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as e:
        from pyrunc.errors import PyruncError
        raise PyruncError(f"open /dev/tty: {(e.strerror or str(e)).lower()}") from None
    os.close(fd)


class Proxy:
    def __init__(self, master, pid):
        self.master, self.pid = master, pid
        self.saved = None
        self.stdin_tty = os.isatty(0)

    def _resize(self, *_):
        try:
            rows, cols = console.get_size(0)
            console.set_size(self.master, rows, cols)
        except OSError:
            pass

    def __enter__(self):
        if self.stdin_tty:
            import termios
            import tty
            self.saved = termios.tcgetattr(0)
            tty.setraw(0, termios.TCSANOW)
            self._resize()
            signal.signal(signal.SIGWINCH, self._resize)
        return self

    def __exit__(self, *exc):
        if self.saved is not None:
            import termios
            signal.signal(signal.SIGWINCH, signal.SIG_DFL)
            termios.tcsetattr(0, termios.TCSADRAIN, self.saved)
        os.close(self.master)

    def copy(self):
        """Copy until the process exits (then drain what it wrote)."""
        pidfd = os.pidfd_open(self.pid)
        poller = select.poll()
        poller.register(self.master, select.POLLIN)
        poller.register(0, select.POLLIN)
        poller.register(pidfd, select.POLLIN)
        try:
            while True:
                for fd, ev in poller.poll():
                    if fd == pidfd:
                        self._drain()
                        return
                    if fd == 0:
                        data = _read(0)
                        if data:
                            _write_all(self.master, data)
                        else:
                            poller.unregister(0)
                    elif fd == self.master:
                        data = _read(self.master)
                        if data:
                            _write_all(1, data)
                        else:
                            poller.unregister(self.master)
        finally:
            os.close(pidfd)

    def _drain(self):
        os.set_blocking(self.master, False)
        while True:
            data = _read(self.master)
            if not data:
                return
            _write_all(1, data)


def _read(fd):
    try:
        return os.read(fd, 65536)
    except (BlockingIOError, OSError):
        return b""  # EIO: every slave fd is closed


def _write_all(fd, data):
    while data:
        try:
            n = os.write(fd, data)
        except BlockingIOError:
            select.select([], [fd], [])
            continue
        except OSError:
            return
        data = data[n:]
