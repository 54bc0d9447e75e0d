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
    # The pidfd first: once the fifo is open, init may exec a short process that exits and is reaped
    # (by a shim, which is a subreaper) before we could open it, and a started container would
    # look stopped.
    try:
        pidfd = os.pidfd_open(state["pid"])
    except ProcessLookupError:
        raise InvalidState("cannot start a container that has stopped", st.STOPPED) from None
    try:
        try:
            fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except FileNotFoundError:
            raise InvalidState("cannot start an already running container", st.RUNNING) from None
        try:
            # Wait for init's byte, or for init to die: a pidfd becomes readable when it exits.
            poller = select.poll()
            poller.register(fd, select.POLLIN)
            poller.register(pidfd, select.POLLIN)
            while True:
                events = dict(poller.poll())
                if fd in events:
                    data = os.read(fd, 1)
                    if data:
                        break
                if pidfd in events or (fd in events and not st.is_alive(state)):
                    raise InvalidState("cannot start a container that has stopped", st.STOPPED)
        finally:
            os.close(fd)
    finally:
        os.close(pidfd)
    if data != b"0":
        raise PyruncError(f"unexpected data {data!r} on {fifo}")
    os.unlink(fifo)
    return state
