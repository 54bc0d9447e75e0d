"""Terminals: a pty from the container's devpts, its master handed over a console socket.

Protocol (runc's, docs/interfaces.md): one sendmsg on a SOCK_STREAM AF_UNIX socket, payload the
pty's name, SCM_RIGHTS carrying exactly one fd, the master. The receiving side is the caller's
--console-socket, or pyrunc itself (a socketpair) when it proxies the pty to its own terminal.
Only C modules here (_socket, fcntl, termios): init imports this before pivot_root.
"""
import os
import struct

from pyrunc.errors import StepError

TIOCSCTTY = 0x540E
TIOCGWINSZ = 0x5413
TIOCSWINSZ = 0x5414
TIOCGPTN = 0x80045430
TIOCSPTLCK = 0x40045431
TIOCGPTPEER = 0x5441
_MAX_NAME = 4096


def connect(path, what="console socket"):
    """Connect to the caller's console (or pidfd) socket (a path; runc refuses abstract ones too)."""
    import _socket
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
    try:
        sock.connect(path)
    except OSError as e:
        sock.close()
        raise StepError(f"connect to {what}", path, e) from None
    return sock.detach()


def socketpair():
    """(runtime end, child end): for pyrunc's own foreground terminal."""
    import _socket
    a, b = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
    return a.detach(), b.detach()


def open_pty(console_size=None):
    """Allocate a pty from /dev/ptmx as the calling process sees it (the container's, after
    pivot_root or setns). Returns (master fd, slave fd, slave name)."""
    import fcntl
    try:
        master = os.open("/dev/ptmx", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as e:
        raise StepError("open pty master", "/dev/ptmx", e) from None
    try:
        fcntl.ioctl(master, TIOCSPTLCK, struct.pack("i", 0))
        number = struct.unpack("i", fcntl.ioctl(master, TIOCGPTN, b"\0\0\0\0"))[0]
        name = f"/dev/pts/{number}"
        try:
            # The peer of this very master, whatever /dev/pts/N resolves to in a hostile rootfs.
            slave = fcntl.ioctl(master, TIOCGPTPEER, os.O_RDWR | os.O_NOCTTY)
        except OSError:
            slave = os.open(name, os.O_RDWR | os.O_NOCTTY)
        if console_size:
            set_size(master, console_size.get("height", 0), console_size.get("width", 0))
        return master, slave, name
    except OSError as e:
        os.close(master)
        raise StepError("allocate pty", "/dev/ptmx", e) from None


def set_size(fd, rows, cols):
    """consoleSize is uint64 in the spec, a struct winsize has 16-bit fields: runc's uint16()
    conversion keeps the low 16 bits, and so do we."""
    import fcntl
    fcntl.ioctl(fd, TIOCSWINSZ, struct.pack("HHHH", rows & 0xFFFF, cols & 0xFFFF, 0, 0))


def get_size(fd):
    import fcntl
    rows, cols, _, _ = struct.unpack("HHHH", fcntl.ioctl(fd, TIOCGWINSZ, b"\0" * 8))
    return rows, cols


def become_stdio(slave):
    """The slave as stdin/stdout/stderr and controlling terminal (the caller has called setsid)."""
    import fcntl
    try:
        fcntl.ioctl(slave, TIOCSCTTY, 0)
    except OSError as e:
        raise StepError("set controlling terminal", None, e) from None
    for fd in (0, 1, 2):
        os.dup2(slave, fd)
    if slave > 2:
        os.close(slave)


def send_master(sock_fd, master, name):
    import _socket
    sock = _socket.socket(fileno=sock_fd)
    try:
        sock.sendmsg([name.encode()[:_MAX_NAME]],
                     [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, struct.pack("i", master))])
    except OSError as e:
        raise StepError("send pty master to console socket", None, e) from None
    finally:
        sock.detach()


def send_pidfd(sock_fd, pid, payload):
    """--pidfd-socket: a pidfd of pid over the socket, runc 1.2's message (one fd, payload the init
    type: "standard" for a container's init, "setns" for an exec'd process)."""
    import _socket
    try:
        pidfd = os.pidfd_open(pid)
    except OSError as e:
        raise StepError("open pidfd", str(pid), e) from None
    sock = _socket.socket(fileno=sock_fd)
    try:
        sock.sendmsg([payload.encode()], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, struct.pack("i", pidfd))])
    except OSError as e:
        raise StepError("send pidfd to pidfd socket", None, e) from None
    finally:
        sock.detach()
        os.close(pidfd)


def receive_master(sock_fd):
    """The master fd sent by send_master, or None if the peer closed without sending."""
    import _socket
    sock = _socket.socket(fileno=sock_fd)
    try:
        _, ancdata, _, _ = sock.recvmsg(_MAX_NAME, _socket.CMSG_SPACE(struct.calcsize("i")))
    finally:
        sock.detach()
    fds = []
    for level, kind, data in ancdata:
        if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
            fds += [struct.unpack_from("i", data, i)[0] for i in range(0, len(data) - len(data) % 4, 4)]
    for extra in fds[1:]:
        os.close(extra)
    if fds:
        os.set_inheritable(fds[0], False)
    return fds[0] if fds else None


def setup_console(sock_fd, console_size):
    """Container init, after pivot_root: allocate the pty, bind its slave on /dev/console, send the
    master to the caller, and make the slave our stdio and controlling terminal."""
    from pyrunc.sys import consts as c
    from pyrunc.sys.calls import mount
    master, slave, name = open_pty(console_size)
    try:
        try:
            os.lstat("/dev/console")  # whatever is there (a node from the image) is mounted over
        except FileNotFoundError:
            try:
                os.close(os.open("/dev/console", os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC, 0o666))
            except OSError as e:
                raise StepError("create /dev/console", "/dev/console", e) from None
        source = f"/proc/self/fd/{slave}" if os.path.exists("/proc/self/fd") else name
        try:
            mount(source, "/dev/console", None, c.MS_BIND)
        except OSError as e:
            raise StepError("bind pty on /dev/console", name, e) from None
        send_master(sock_fd, master, name)
    finally:
        os.close(master)
        os.close(sock_fd)
    become_stdio(slave)
