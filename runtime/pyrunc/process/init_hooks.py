"""The hook steps inside container init (runtime-spec lifecycle steps 3-5 and 7).

before_pivot: namespaces and mounts exist; the runtime runs prestart and createRuntime in its own
namespaces while init waits, then init runs createContainer in the container's namespaces (paths
still resolve in the runtime's filesystem). start_container: after `start` released exec.fifo,
startContainer runs inside the container; a failure is written on exec.fifo for `start` to report.
"""
import os

from pyrunc.errors import PyruncError, StepError
from pyrunc.process import hooks, sync


def before_pivot(args):
    config = args.config
    state = getattr(args, "hook_state", None)
    fds = getattr(args, "hooks_fds", None)
    if fds is not None:
        read_fd, write_fd = fds
        os.close(write_fd)
        sync.send(args.sync_fd, sync.HOOKS)
        answer = os.read(read_fd, 1)
        os.close(read_fd)
        if answer != b"1":
            raise StepError("wait for prestart/createRuntime hooks", None, "the runtime did not finish them")
    if state is not None and hooks.entries(config, "createContainer"):
        hooks.run_all(config, "createContainer", hooks.hook_state(state, "creating", os.getpid()))


def start_container(args, wait_for_start):
    state = getattr(args, "hook_state", None)
    if state is None or not hooks.entries(args.config, "startContainer"):
        wait_for_start(args.fifo_fd)
        return
    fd = wait_for_start(args.fifo_fd, keep_open=True)
    try:
        hooks.run_all(args.config, "startContainer", hooks.hook_state(state, "created", os.getpid()))
    except PyruncError as e:
        try:
            os.write(fd, str(e).encode()[:4000])
        except OSError:
            pass
        raise
    # fd stays open: CLOEXEC, so execve closes it and `start` sees EOF, i.e. success.
