"""start: open exec.fifo for reading, which releases init into execve of process.args."""
import os
import select

from pyrunc.errors import InvalidState, PyruncError
from pyrunc.lifecycle.container import load
from pyrunc.state import status as st
from pyrunc.state.store import EXEC_FIFO


def start(store, container_id):
    state, status = load(store, container_id)
    if status == st.STOPPED:
        raise InvalidState("cannot start a container that has stopped", status)
    if status != st.CREATED:
        raise InvalidState(f"cannot start an already {status} container", status)
    fifo = store.path(container_id, EXEC_FIFO)
    from pyrunc.process import start_extras
    notify = start_extras.notify_listener(store.path(container_id))
    hook_error = None
    try:
        fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise InvalidState("cannot start an already running container", st.RUNNING) from None
    try:
        # Wait for init's byte, or for init to die: a pidfd becomes readable when it exits.
        pidfd = os.pidfd_open(state["pid"])
        try:
            poller = select.poll()
            poller.register(fd, select.POLLIN)
            poller.register(pidfd, select.POLLIN)
            while True:
                events = dict(poller.poll())
                if fd in events:
                    data = os.read(fd, 1)
                    if data:
                        if data == b"0":
                            hook_error = start_extras.start_container_result(fd, pidfd, state)
                        break
                if pidfd in events or (fd in events and not st.is_alive(state)):
                    raise InvalidState("cannot start a container that has stopped", st.STOPPED)
        finally:
            os.close(pidfd)
    except ProcessLookupError:
        raise InvalidState("cannot start a container that has stopped", st.STOPPED) from None
    finally:
        os.close(fd)
    if data != b"0":
        raise PyruncError(f"unexpected data {data!r} on {fifo}")
    os.unlink(fifo)
    start_extras.after_start(store, container_id, state, hook_error, notify)
    return state
