"""Freezer: read, freeze and thaw one cgroup directory, v1 (freezer.state) or v2 (cgroup.freeze).

States are runc's strings: "THAWED", "FROZEN", "FREEZING". A missing freezer (no file, or the cgroup
is already gone) reads as THAWED: there is nothing that could hold the processes.
"""
import errno
import os
import time

from ..errors import StepError
from . import fs

THAWED, FROZEN, FREEZING = "THAWED", "FROZEN", "FREEZING"

# v2 freezing completes asynchronously; runc gives it 10 s before calling it stuck.
V2_FREEZE_TIMEOUT = 10.0


def _read_optional(path, step):
    try:
        return fs.read(path)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENODEV):
            return None
        raise StepError(step, path, exc) from exc


def saved_state(cgroup_state):
    """The freezer state of a container's cgroup as state.json records it (manager.to_state()),
    without building a manager: deriving a status needs only this. Same choice of freezer as the
    managers' _freezer(): the v1 one when mounted, else the unified one."""
    paths = cgroup_state.get("paths") or {}
    if "freezer" in paths:
        return v1_state(paths["freezer"])
    if "" in paths:
        return v2_state(paths[""])
    return THAWED


# --- cgroup v1 ---------------------------------------------------------------------------------

def v1_state(cgdir):
    path = os.path.join(cgdir, "freezer.state")
    state = _read_optional(path, "read freezer state")
    if state is None:
        return THAWED
    state = state.strip()
    if state == FROZEN:
        # FROZEN is also reported when only an ancestor is frozen; like runc, the container counts
        # as paused only when its own cgroup was frozen (what `pause` does and `resume` undoes).
        self_freezing = _read_optional(os.path.join(cgdir, "freezer.self_freezing"),
                                       "read freezer state")
        if self_freezing is not None and self_freezing.strip() == "0":
            return THAWED
    if state not in (THAWED, FROZEN, FREEZING):
        raise StepError("read freezer state", path, f"unexpected value {state!r}")
    return state


def v1_freeze(cgdir):
    path = os.path.join(cgdir, "freezer.state")
    # The v1 freezer can stay FREEZING while processes keep forking or joining; rewriting FROZEN
    # retries, and an occasional thaw+pause lets stragglers settle (runc's empirically tuned loop).
    for i in range(1000):
        if i % 50 == 49:
            _try_write(path, THAWED)
            time.sleep(0.01)
        try:
            fs.write(path, FROZEN)
            if i % 25 == 24:
                time.sleep(0.00001)
            state = fs.read(path).strip()
        except OSError as exc:
            raise StepError("freeze cgroup", path, exc) from exc
        if state == FROZEN:
            return
        if state != FREEZING:
            raise StepError("freeze cgroup", path, f"state is {state!r} after writing FROZEN")
    # Half-frozen is worse than not frozen: processes hang with no one to resume them.
    _try_write(path, THAWED)
    raise StepError("freeze cgroup", path, "stuck in FREEZING, thawed it again")


def v1_thaw(cgdir):
    path = os.path.join(cgdir, "freezer.state")
    try:
        fs.write(path, THAWED)
    except OSError as exc:
        raise StepError("thaw cgroup", path, exc) from exc
    state = v1_state(cgdir)
    if state != THAWED:
        raise StepError("thaw cgroup", path, f"state is {state} after writing THAWED")


# --- cgroup v2 ---------------------------------------------------------------------------------

def _v2_frozen_event(cgdir):
    """The kernel's view ("frozen" in cgroup.events): True once every process is stopped."""
    path = os.path.join(cgdir, "cgroup.events")
    text = _read_optional(path, "read freezer state")
    if text is None:
        return False
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if key == "frozen":
            return value.strip() == "1"
    return False


def v2_state(cgdir):
    path = os.path.join(cgdir, "cgroup.freeze")
    wanted = _read_optional(path, "read freezer state")
    if wanted is None or wanted.strip() == "0":
        # "0" with frozen=1 means only an ancestor is frozen: not paused by us (as v1_state).
        return THAWED
    if wanted.strip() != "1":
        raise StepError("read freezer state", path, f"unexpected value {wanted.strip()!r}")
    return FROZEN if _v2_frozen_event(cgdir) else FREEZING


def v2_freeze(cgdir, timeout=None):
    path = os.path.join(cgdir, "cgroup.freeze")
    try:
        fs.write(path, "1")
    except OSError as exc:
        raise StepError("freeze cgroup", path, exc) from exc
    deadline = time.monotonic() + (V2_FREEZE_TIMEOUT if timeout is None else timeout)
    delay = 0.0005
    while not _v2_frozen_event(cgdir):
        if time.monotonic() >= deadline:
            _try_write(path, "0")
            raise StepError("freeze cgroup", os.path.join(cgdir, "cgroup.events"),
                            "timed out waiting for \"frozen 1\", thawed it again")
        time.sleep(delay)
        delay = min(delay * 2, 0.01)


def v2_thaw(cgdir):
    path = os.path.join(cgdir, "cgroup.freeze")
    try:
        fs.write(path, "0")
    except OSError as exc:
        raise StepError("thaw cgroup", path, exc) from exc
    # Processes resume at once; cgroup.events may keep "frozen 1" only if an ancestor is frozen,
    # which is not ours to undo, so the request itself is what is checked.
    state = v2_state(cgdir)
    if state != THAWED:
        raise StepError("thaw cgroup", path, f"state is {state} after writing 0")


def _try_write(path, value):
    try:
        fs.write(path, value)
    except OSError:
        pass  # only used on the way to reporting the real failure
