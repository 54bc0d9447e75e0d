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


def pid_namespace(pid):
    """[dev, inode] of a process's pid namespace, or None once it is gone."""
    try:
        found = os.stat(f"/proc/{pid}/ns/pid")
    except OSError:
        return None
    return [found.st_dev, found.st_ino]


def _belongs(state, cgroup):
    """Which processes of a cgroup that is not the container's own are the container's.

    With a pid namespace of its own (state["pid_ns"], recorded at create), those in it; the kernel
    kills the whole namespace with init anyway. Otherwise those that were not in the cgroup when
    create found it (cgroup.foreign): a shared cgroup's other processes are never signalled.
    """
    if state.get("pid_ns_new"):
        ns = state.get("pid_ns")
        return (lambda pid: pid_namespace(pid) == ns) if ns else (lambda pid: False)
    from pyrunc.cgroups.ownership import identity
    foreign = {tuple(p) for p in cgroup.foreign}

    def not_foreign(pid):
        found = identity(pid)
        return found is not None and tuple(found) not in foreign
    return not_foreign


def signal_all(state, sig, cgroup=None):
    """Signal every process of the container: all of its cgroup when create made that cgroup,
    else only the container's own processes in it (_belongs)."""
    cgroup = cgroup or cgroup_of(state)
    if cgroup is None:
        return
    if cgroup.owned():
        if cgroup.pids():
            cgroup.kill_all(sig)  # thaws a paused cgroup for SIGKILL: frozen tasks ignore it
    else:
        cgroup.signal_some(sig, _belongs(state, cgroup))


def kill_everything(state, cgroup=None):
    """SIGKILL init and every other process of the container (thawing its cgroup if paused).
    cgroup: the live manager when the caller has one (create's undo), else the state's."""
    if st.is_alive(state):
        try:
            os.kill(state["pid"], signal.SIGKILL)
        except ProcessLookupError:
            pass
    signal_all(state, signal.SIGKILL, cgroup)
    wait_dead(state)


def destroy(store, container_id, state):
    """Remove what create made: leftover processes, the cgroup, the state directory."""
    cgroup = cgroup_of(state)
    if cgroup is not None:
        # With a shared pid namespace the container's processes outlive its init.
        signal_all(state, signal.SIGKILL, cgroup)
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
