"""run: create + start, then (in the foreground) forward signals, wait, delete, exit with its status."""
import os
import _signal as signal  # the signal package imports enum: 2 ms at every start

from pyrunc.lifecycle.container import destroy, kill_everything
from pyrunc.lifecycle.create import create
from pyrunc.lifecycle.start import start

# Everything a user may send to `run` goes on to the container, as runc's signal proxy does.
_FORWARDED = (signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2,
              signal.SIGALRM, signal.SIGPIPE, signal.SIGCONT, signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU,
              signal.SIGWINCH)


def run(ctx, container_id, opts, keep=False):
    if not opts.detach:
        # Init is a grandchild (the intermediate exits): as subreaper we inherit it and can wait.
        from pyrunc.sys import consts as c
        from pyrunc.sys.calls import prctl
        prctl(c.PR_SET_CHILD_SUBREAPER, 1)
    store = ctx.store()
    state = create(ctx, container_id, opts)
    try:
        start(store, container_id)
    except BaseException:
        kill_everything(state)
        _reap(state["pid"])
        destroy(store, container_id, state)
        raise
    if opts.detach:
        return 0
    pid = state["pid"]
    for sig in _FORWARDED:
        signal.signal(sig, lambda signum, frame: _forward(pid, signum))
    status = _reap(pid)
    for sig in _FORWARDED:
        signal.signal(sig, signal.SIG_DFL)
    if not keep:
        kill_everything(state)
        destroy(store, container_id, state)
    return status


def _forward(pid, signum):
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


def _reap(pid):
    """Wait for init (reaping orphans re-parented to us meanwhile); 128+signal if it was killed."""
    while True:
        try:
            child, status = os.waitpid(-1, 0)
        except ChildProcessError:
            return 255
        if child == pid:
            code = os.waitstatus_to_exitcode(status)
            return 128 - code if code < 0 else code
