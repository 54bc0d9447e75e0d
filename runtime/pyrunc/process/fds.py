"""fds handed to the container: systemd socket activation (LISTEN_FDS) and --preserve-fds."""
import os

from pyrunc.errors import StepError


def listen_fds():
    """How many socket-activation fds (3...) were passed to us, per sd_listen_fds(3): only if
    LISTEN_PID names this very process, as runc's activation.Files checks."""
    count, pid = os.environ.get("LISTEN_FDS"), os.environ.get("LISTEN_PID")
    if not count or pid != str(os.getpid()):
        return 0
    try:
        return max(0, int(count))
    except ValueError:
        return 0


def check_preserved(n):
    """Every fd 3..3+n-1 must be open (runc refuses missing ones too)."""
    for fd in range(3, 3 + n):
        try:
            os.fstat(fd)
        except OSError:
            raise StepError("preserve fd", str(fd), "not open") from None
