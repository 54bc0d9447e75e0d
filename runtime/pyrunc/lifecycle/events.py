"""events: the container's statistics once (--stats) or as a stream, with OOM kills as they happen.

Lines are runc's JSON events: {"type": "stats", "id": ..., "data": {...}} and {"type": "oom", "id": ...}.
The stream polls the OOM-kill counter (memory.oom_control's oom_kill on v1, memory.events on v2)
between stats, and ends once the container has stopped (after a last OOM check, so the kill that
stopped it is still reported).
"""
import time

from pyrunc.errors import InvalidState
from pyrunc.lifecycle.container import cgroup_of, load
from pyrunc.state import status as st

OOM_POLL = 0.1  # seconds between OOM counter reads


def _cgroup(store, container_id):
    state, status = load(store, container_id)
    if status == st.STOPPED:
        raise InvalidState("container is not running", status)
    cgroup = cgroup_of(state)
    if cgroup is None:
        raise InvalidState("container has no cgroup", status)
    return state, cgroup


def stats_event(container_id, cgroup):
    from pyrunc.cgroups.stats import collect
    return {"type": "stats", "id": container_id, "data": collect(cgroup)}


def stats_once(store, container_id):
    _, cgroup = _cgroup(store, container_id)
    return stats_event(container_id, cgroup)


def stream(store, container_id, interval, emit):
    """Call emit(event) for each event until the container stops."""
    from pyrunc import startup
    startup.long_running()
    from pyrunc.cgroups.stats import oom_kills
    state, cgroup = _cgroup(store, container_id)
    seen = oom_kills(cgroup)
    next_stats = time.monotonic()
    while True:
        kills = oom_kills(cgroup)
        if kills > seen:
            seen = kills
            emit({"type": "oom", "id": container_id})
        if not st.is_alive(state):
            return
        now = time.monotonic()
        if now >= next_stats:
            emit(stats_event(container_id, cgroup))
            next_stats = now + interval
        time.sleep(max(0.0, min(OOM_POLL, next_stats - time.monotonic())))
