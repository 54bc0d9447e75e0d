"""start: open exec.fifo for reading, which releases init into execve of process.args."""
import os
import select

from pyrunc.errors import InvalidState, PyruncError
from pyrunc.lifecycle.container import load
from pyrunc.state import status as st
from pyrunc.state.store import EXEC_FIFO


def start(store, container_id, created_state=None):
    """created_state: the state `run` has just created (it is not read back from disk)."""
    if created_state is not None:
        state = created_state
    else:
        state, status = load(store, container_id)
        if status == st.STOPPED:
            raise InvalidState("cannot start a container that has stopped", status)
        if status == st.CREATING:  # runc's wording for a status it has no other answer for
            raise InvalidState(f"cannot start a container in the {status} state", status)
        if status != st.CREATED:
            raise InvalidState(f"cannot start an already {status} container", status)
    fifo = store.path(container_id, EXEC_FIFO)
    # Hooks and sd_notify forwarding live in start_extras, imported only when there is work for it.
    hooks = (state.get("config") or {}).get("hooks") or {}
    extras = None
    if hooks.get("startContainer") or hooks.get("poststart") or os.environ.get("NOTIFY_SOCKET"):
        from pyrunc.process import start_extras as extras
    stopped = InvalidState("cannot start a container that has stopped", st.STOPPED)
    # The pidfd is taken before the fifo is opened: once it is, init may exec, exit and be reaped
    # (a shim reaps at once) before we look, and a late pidfd_open would call that "stopped".
    try:
        pidfd = os.pidfd_open(state["pid"])
    except ProcessLookupError:
        raise stopped from None
    try:
        if not st.is_alive(state):  # the pidfd must be init's, not a reused pid's
            raise stopped
        # Bound before init is released, so the container's first sd_notify finds it.
        notify = extras.notify_listener(store.path(container_id)) if extras else None
        try:
            fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except FileNotFoundError:
            raise InvalidState("cannot start an already running container", st.RUNNING) from None
        try:
            data = _wait_for_byte(fd, pidfd)
            hook_error = extras.start_container_result(fd, pidfd, state) if extras and data == b"0" else None
        finally:
            os.close(fd)
    finally:
        os.close(pidfd)
    if not data:
        raise stopped
    if data != b"0":
        raise PyruncError(f"unexpected data {data!r} on {fifo}")
    try:
        os.unlink(fifo)
    except FileNotFoundError:
        pass  # a concurrent start or delete got there first
    if extras:
        extras.after_start(store, container_id, state, hook_error, notify)
    return state


def _wait_for_byte(fd, pidfd):
    """Init's byte from exec.fifo, or b"" if init exited without writing it.

    A pidfd polls readable once its process has exited; init may have written first, so the fifo
    is always read before concluding anything from the pidfd.
    """
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    poller.register(pidfd, select.POLLIN)
    while True:
        events = dict(poller.poll())
        try:
            data = os.read(fd, 1)
        except BlockingIOError:
            data = b""
        if data or pidfd in events:
            return data
        if events.get(fd, 0) & select.POLLHUP:
            # A writer came and went without a byte: init is dying; its pidfd will say so.
            poller.unregister(fd)
