"""kill: signal init (checked against its start time), or every process of the cgroup."""
import os
import _signal

from pyrunc.errors import InvalidState, UsageError
from pyrunc.lifecycle.container import cgroup_of, load, signal_all
from pyrunc.state import status as st


def parse_signal(text):
    """runc's forms: a number, or a name with or without SIG (case-insensitive)."""
    if text.isascii() and text.isdigit():  # str.isdigit() alone also accepts "²" and "٣"
        number = int(text)
        if not 0 <= number < 65:  # 0 as runc: no signal sent, only "is it running" checked
            raise UsageError(f"unknown signal {text!r}")
        return number
    name = text.upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    value = getattr(_signal, name, None)
    if not isinstance(value, int) or name.startswith("SIG_"):
        raise UsageError(f"unknown signal {text!r}")
    return int(value)


def kill(store, container_id, sig, all_processes=False):
    state, status = load(store, container_id)
    cgroup = cgroup_of(state)
    if all_processes and cgroup is not None:
        # As runc: even once init has exited, what is left of the container in its cgroup (a
        # shared pid namespace's orphans) is signalled, and that is a success.
        signal_all(state, sig, cgroup)
        return
    if status == st.STOPPED:
        raise InvalidState("container not running", status)
    signal_init(state, sig)


def signal_init(state, sig):
    """Signal init through a pidfd taken before checking its start time: no pid-reuse race."""
    if not state.get("pid"):  # a create still under way (or killed) before init was spawned
        raise InvalidState("container not running", st.STOPPED)
    try:
        pidfd = os.pidfd_open(state["pid"])
    except ProcessLookupError:
        raise InvalidState("container not running", st.STOPPED) from None
    try:
        if not st.is_alive(state):
            raise InvalidState("container not running", st.STOPPED)
        _signal.pidfd_send_signal(pidfd, sig)
    except ProcessLookupError:
        raise InvalidState("container not running", st.STOPPED) from None
    finally:
        os.close(pidfd)
