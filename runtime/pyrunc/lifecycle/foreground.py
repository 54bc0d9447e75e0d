"""Waiting for a foreground process (run, exec): signals forwarded, the pty proxied, 128+signal."""
import os
import _signal as signal  # the signal package imports enum

# Everything a user may send goes on to the process, as runc's signal proxy does.
FORWARDED = (signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2,
             signal.SIGALRM, signal.SIGPIPE, signal.SIGCONT, signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU,
             signal.SIGWINCH)


def _forward(pid, signum):
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


def reap(pid):
    """Wait for pid (reaping orphans re-parented to us meanwhile); 128+signal if it was killed."""
    while True:
        try:
            child, status = os.waitpid(-1, 0)
        except ChildProcessError:
            return 255
        if child == pid:
            code = os.waitstatus_to_exitcode(status)
            return 128 - code if code < 0 else code


def wait_foreground(pid, master=None):
    """Forward signals to pid, proxy the pty master (if any) to our terminal, return its status."""
    from pyrunc import startup
    startup.long_running()  # the container may run for days
    forwarded = FORWARDED if master is None else tuple(s for s in FORWARDED if s != signal.SIGWINCH)
    for sig in forwarded:
        signal.signal(sig, lambda signum, frame: _forward(pid, signum))
    try:
        if master is not None:
            from pyrunc.process.ttyproxy import Proxy
            with Proxy(master, pid) as proxy:
                proxy.copy()
        return reap(pid)
    finally:
        for sig in forwarded:
            signal.signal(sig, signal.SIG_DFL)
