"""The client side of the monitor's attach socket (conmon's packets: byte 0 names the stream, 2
stdout / 3 stderr): output to our stdout/stderr, our stdin to the container. Two connections: one
only reads (it lives until the monitor closes it at the container's exit), one carries stdin and is
closed at our stdin's EOF (the monitor then closes the container's stdin) or when the detach keys
are typed (the monitor drops it). With a tty our terminal is raw and its size goes to the ctl fifo."""
import os
import select
import signal
import socket
import sys

STDOUT, STDERR = 2, 3


def socket_path(ctx, cid):
    return os.path.join(ctx.socket_dir, cid[:12], "attach")


def connect(ctx, cid):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
    try:
        s.connect(socket_path(ctx, cid))
    except OSError:
        s.close()
        raise
    return s


def _winsize(ctx, cid, fd):
    import fcntl
    import struct
    import termios
    try:
        h, w, _, _ = struct.unpack("HHHH", fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8))
        resize(ctx, cid, h, w)
    except OSError:
        pass


def resize(ctx, cid, height, width):
    """The container's terminal size, by the monitor's ctl fifo (conmon's `1 H W` line)."""
    ctl = os.open(os.path.join(ctx.containers.dir(cid), "bundle", "ctl"), os.O_WRONLY | os.O_NONBLOCK)
    try:
        os.write(ctl, f"1 {height} {width}\n".encode())
    finally:
        os.close(ctl)


class Session:
    """Connected before the container's process starts, so nothing it writes is missed."""

    def __init__(self, ctx, cid, stdin, tty, detach_keys=None):
        from pyrunc_shim.attachproto import DEFAULT_DETACH_KEYS, parse_detach_keys
        self.ctx, self.cid, self.tty = ctx, cid, tty
        keys = DEFAULT_DETACH_KEYS if detach_keys is None else detach_keys
        self.keys = parse_detach_keys(keys)
        self.out = connect(ctx, cid)
        self.inp = connect(ctx, cid) if stdin else None
        self.detached = False

    def relay(self):
        """Until the container's output ends (True) or we detached (False)."""
        old_term = None
        in_fd = sys.stdin.fileno() if self.inp else -1
        if self.tty and self.inp and os.isatty(in_fd):
            import termios
            import tty
            old_term = termios.tcgetattr(in_fd)
            tty.setraw(in_fd, termios.TCSANOW)  # keep what was typed before the attach
            _winsize(self.ctx, self.cid, in_fd)
            signal.signal(signal.SIGWINCH, lambda *_: _winsize(self.ctx, self.cid, in_fd))
        try:
            return self._loop(in_fd)
        finally:
            if old_term is not None:
                import termios
                termios.tcsetattr(in_fd, termios.TCSADRAIN, old_term)
            self.close()

    def read_output(self):
        """One packet of the monitor's attach socket as (stream, payload) (stream: STDOUT or STDERR,
        byte 0 of the packet), or None once the container's output has ended (the socket is
        closed then)."""
        try:
            pkt = self.out.recv(65536)
        except OSError:
            pkt = b""
        if not pkt:
            self.out.close()
            self.out = None
            return None
        return pkt[0], pkt[1:]

    def _loop(self, in_fd):
        outs = {STDOUT: sys.stdout.buffer, STDERR: sys.stderr.buffer}
        watch = [self.out]
        if self.inp:
            watch += [self.inp, in_fd]
        while True:
            try:
                ready, _, _ = select.select(watch, [], [])
            except InterruptedError:
                continue
            if self.out in ready:
                pkt = self.read_output()
                if pkt is None:
                    return True
                dst = outs.get(pkt[0])
                if dst is not None:
                    dst.write(pkt[1])
                    dst.flush()
            if self.inp is not None and self.inp in ready:
                try:
                    gone = not self.inp.recv(1, socket.MSG_DONTWAIT)
                except BlockingIOError:
                    gone = False
                except OSError:
                    gone = True
                if gone:  # the monitor let this client go: the detach keys were typed
                    self.detached = True
                    return False
            if in_fd in ready:
                try:
                    data = os.read(in_fd, 65536)
                except OSError:
                    data = b""
                if data:
                    try:
                        self.inp.send(data)
                    except OSError:
                        data = b""
                if not data:
                    watch = [self.out]
                    self.inp.close()
                    self.inp = None

    def close(self):
        """Leave without ending the container's stdin: the monitor takes a connection's close as
        the end of stdin unless the connection detached, so the output connection, which carried
        no input, detaches first (with the monitor's detach keys)."""
        if self.out is not None and self.keys:
            try:
                self.out.send(self.keys)
            except OSError:
                pass
        for s in (self.out, self.inp):
            if s is not None:
                s.close()
        self.out = self.inp = None
