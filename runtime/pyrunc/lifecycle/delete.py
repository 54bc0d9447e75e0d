"""delete: remove a stopped container; a created one is killed first (as runc); --force kills any."""
from pyrunc.errors import ContainerNotFound, InvalidState, StepError
from pyrunc.lifecycle.container import destroy, kill_everything, load
from pyrunc.state import status as st


def delete(store, container_id, force=False):
    try:
        state, status = load(store, container_id)
    except (ContainerNotFound, StepError):
        if force:
            store.remove(container_id)  # a directory left without state.json by a crash
            return
        raise
    if status not in (st.STOPPED, st.CREATED) and not force:
        raise InvalidState(f"cannot delete container {container_id} that is not stopped: {status}", status)
    if status != st.STOPPED:
        kill_everything(state)
    destroy(store, container_id, state)
