"""fds handed to the container: systemd socket activation (LISTEN_FDS) and --preserve-fds, and
the last step before execve that keeps every other fd out of it."""
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


def close_on_exec_from(preserve_fds, filtered):
    """Let fds 0..2 and the preserve_fds after them through execve, and no other.

    filtered: a seccomp filter is already loaded (without noNewPrivileges it goes in before the user
    switch). Then only the calls runc makes here (utils.CloseExecFrom: list /proc/self/fd, fcntl
    F_SETFD on each): profiles written before close_range(2) existed deny it, and the container
    would die here. Unfiltered, close_range does it in one call."""
    from pyrunc.sys import consts as c
    from pyrunc.sys.calls import close_range, set_cloexec
    first = 3 + preserve_fds
    for fd in range(3, first):
        set_cloexec(fd, False)
    if not filtered:
        close_range(first, flags=c.CLOSE_RANGE_CLOEXEC)
        return
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd >= first:
            try:
                set_cloexec(fd, True)
            except OSError:
                pass  # the listing's own directory fd, closed since (runc ignores these too)
