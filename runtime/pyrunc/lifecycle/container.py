"""Loading a container and tearing down what create made: shared by start, kill, delete and run."""
import os
import _signal as signal  # the signal package imports enum: 2 ms at every start
import time

from pyrunc.state import status as st


def load(store, container_id):
    """(state dict, derived status)."""
    state = store.load(container_id)
    return state, st.derive(state, store.path(container_id))


def cgroup_of(state):
    if not state.get("cgroup"):
        return None
    from pyrunc.cgroups.manager import from_state
    return from_state(state["cgroup"])


def wait_dead(state, timeout=10.0):
    """Poll until init is gone or a zombie (its reaper may not be us)."""
    deadline = time.monotonic() + timeout
    delay = 0.0005
    while st.is_alive(state):
        if time.monotonic() > deadline:
            return False
        time.sleep(delay)
        delay = min(delay * 2, 0.02)
    return True


def kill_everything(state):
    """SIGKILL init and every process in the container's cgroup (thawing it if paused)."""
    cgroup = cgroup_of(state)
    if st.is_alive(state):
        try:
            os.kill(state["pid"], signal.SIGKILL)
        except ProcessLookupError:
            pass
    if cgroup is not None and cgroup.pids():
        cgroup.kill_all(signal.SIGKILL)  # thaws a paused cgroup: frozen tasks ignore SIGKILL
    wait_dead(state)


def destroy(store, container_id, state):
    """Remove what create made: leftover processes, the cgroup, the state directory."""
    cgroup = cgroup_of(state)
    if cgroup is not None:
        if cgroup.pids():
            # With a shared pid namespace the container's processes outlive its init.
            cgroup.kill_all(signal.SIGKILL)
        cgroup.destroy()
    config = state.get("config")
    from pyrunc.linux.namespaces import has_mount_namespace
    if config and state.get("rootfs") and not has_mount_namespace(config):
        from pyrunc.linux.rootfs import release_shared_mounts
        release_shared_mounts(state["rootfs"])
    store.remove(container_id)
    if config and config.get("hooks"):
        from pyrunc.log import logger
        from pyrunc.process import hooks
        # Step 13: after everything is gone; failures are warnings and the other hooks still run.
        hooks.run_all(config, "poststop", hooks.hook_state(state, "stopped", 0), warn=logger.warning)
