"""run: create + start, then (in the foreground) forward signals, wait, delete, exit with its status."""
import os

from pyrunc.lifecycle.container import destroy, kill_everything
from pyrunc.lifecycle.create import create
from pyrunc.lifecycle.start import start


def run(ctx, container_id, opts, keep=False):
    if not opts.detach:
        # Init may be a grandchild (when an intermediate forks it, process/spawn.py): as subreaper
        # we inherit it when the intermediate exits, and can wait for it.
        from pyrunc.sys import consts as c
        from pyrunc.sys.calls import prctl
        prctl(c.PR_SET_CHILD_SUBREAPER, 1)
    store = ctx.store()
    state = create(ctx, container_id, opts)
    try:
        start(store, container_id, created_state=state)
    except BaseException:
        master = getattr(opts, "console_master", None)
        if master is not None:  # the terminal of a container that will never run
            opts.console_master = None
            os.close(master)
        kill_everything(state)
        _reap(state["pid"])
        if store.exists(container_id):  # a failed poststart hook has already undone it all
            destroy(store, container_id, state)
        raise
    if opts.detach:
        return 0
    from pyrunc.lifecycle.foreground import wait_foreground
    status = wait_foreground(state["pid"], getattr(opts, "console_master", None))
    if not keep:
        kill_everything(state)
        destroy(store, container_id, state)
    if getattr(opts, "tracer", None) is not None:
        opts.tracer.wait()  # the trace file is complete when run returns
    return status


def _reap(pid):
    from pyrunc.lifecycle.foreground import reap
    return reap(pid)
