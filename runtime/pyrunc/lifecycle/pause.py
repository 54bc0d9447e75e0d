"""pause/resume: freeze and thaw the container's cgroup (v1 freezer.state, v2 cgroup.freeze)."""
from pyrunc.errors import InvalidState
from pyrunc.lifecycle.container import cgroup_of, load
from pyrunc.state import status as st


def pause(store, container_id):
    state, status = load(store, container_id)
    # runc pauses created containers too: init waits on exec.fifo and is frozen there.
    if status not in (st.RUNNING, st.CREATED):
        raise InvalidState("container not running", status)
    cgroup = cgroup_of(state)
    if cgroup is None:
        raise InvalidState("container has no cgroup to freeze", status)
    cgroup.freeze()


def resume(store, container_id):
    state, status = load(store, container_id)
    if status != st.PAUSED:
        raise InvalidState("container not paused", status)
    cgroup_of(state).thaw()
