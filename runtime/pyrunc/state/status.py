"""Derive a container's status from facts, never from a stored string.

A pid alone is not identity (pids are reused), so the init process is "alive" only while
/proc/<pid>/stat shows the start time recorded at create and the process is not a zombie.
"""
import os

CREATING, CREATED, RUNNING, PAUSED, STOPPED = "creating", "created", "running", "paused", "stopped"


def start_time(pid):
    """Field 22 of /proc/<pid>/stat, or None if the process is gone or a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # comm (field 2) may hold spaces and parentheses: split after the last ')'.
    fields = data[data.rindex(b")") + 2:].split()
    if fields[0] in (b"Z", b"X"):
        return None
    return int(fields[19])


def is_alive(state):
    pid = state.get("pid") or 0
    return pid > 0 and start_time(pid) == state.get("init_start_time")


def derive(state, state_dir):
    if state.get("creating"):
        # create has not finished (or was killed before it did): state.json exists from create's
        # first step so that `delete --force` finds what it made, but this is no container yet.
        return CREATING
    if not is_alive(state):
        return STOPPED
    cgroup = state.get("cgroup")
    if cgroup:
        from pyrunc.cgroups.freezer import saved_state
        if saved_state(cgroup) != "THAWED":
            return PAUSED
    # exec.fifo alone is not the answer: a start killed between releasing init (its open) and
    # removing the fifo leaves it behind. Init holds the fifo open until it execs, so a fifo
    # that init no longer holds was released.
    fifo = os.path.join(state_dir, "exec.fifo")
    if os.path.exists(fifo) and holds(state["pid"], fifo):
        return CREATED
    return RUNNING


def holds(pid, path):
    """Whether process pid has an fd open on the file at path (unknown counts as yes)."""
    try:
        target = os.stat(path)
        names = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return True
    for name in names:
        try:
            found = os.stat(f"/proc/{pid}/fd/{name}")
        except OSError:
            continue
        if (found.st_dev, found.st_ino) == (target.st_dev, target.st_ino):
            return True
    return False
