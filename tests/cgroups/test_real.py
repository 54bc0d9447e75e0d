"""The managers against this machine's real cgroup filesystems (root only).

Every cgroup lives below a unique pyrunc-test-* name that the cgroup_name fixture sweeps away at
teardown, and every helper process is killed by the spawn fixture, whatever the test did.
"""
import os
import signal
import subprocess
import time

import pytest

from pyrunc.cgroups import manager, mountinfo
from pyrunc.errors import StepError

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
]

MOUNTINFO = mountinfo.read_mountinfo()
HIERARCHIES = mountinfo.cgroup_hierarchies(MOUNTINFO)
MODE = mountinfo.detect_mode(HIERARCHIES) if HIERARCHIES else None
V1_LINES = "".join(l + "\n" for l in MOUNTINFO.splitlines() if " - cgroup " in l)
V2_LINES = "".join(l + "\n" for l in MOUNTINFO.splitlines() if " - cgroup2 " in l)
UNIFIED = next((h.mountpoint for h in HIERARCHIES if h.version == "v2"), None)

needs_v1 = pytest.mark.skipif(MODE not in ("v1", "hybrid"), reason="no cgroup v1 on this host")
needs_v2 = pytest.mark.skipif(UNIFIED is None, reason="no cgroup2 hierarchy on this host")


def proc_cgroups(pid):
    with open(f"/proc/{pid}/cgroup") as f:
        return mountinfo.parse_self_cgroup(f.read())


def wait_for(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def assert_gone(m, name):
    """Nothing of the test's top-level cgroup `name` is left in any hierarchy."""
    for cgdir in m.paths.values():
        top = cgdir[:cgdir.index(f"/{name}") + len(name) + 1]
        assert not os.path.exists(top), top


@needs_v1
def test_host_lifecycle(cgroup_name, spawn):
    """The host's own layout (hybrid here): create, join, pids, freeze/thaw, kill_all, destroy."""
    m = manager.open_manager(f"/{cgroup_name}/ctr", "ctr")
    assert m.version == MODE
    m.create()
    # Nested new levels: joining cpuset works only because cpus/mems were copied down.
    with open("/sys/fs/cgroup/cpuset/cpuset.cpus") as root, \
            open(os.path.join(m.paths["cpuset"], "cpuset.cpus")) as leaf:
        assert leaf.read() == root.read()
    child = spawn("sleep", "100")
    m.join(child.pid)
    own = proc_cgroups(child.pid)
    for key in m.paths:
        assert own[key] == f"/{cgroup_name}/ctr", key
    assert m.pids() == [child.pid]

    m.freeze()
    assert m.freezer_state() == "FROZEN"
    with open(os.path.join(m.paths["freezer"], "freezer.state")) as f:
        assert f.read().strip() == "FROZEN"
    m.thaw()
    assert m.freezer_state() == "THAWED"

    m.kill_all(signal.SIGTERM)
    assert child.wait(timeout=5) == -signal.SIGTERM
    assert m.pids() == []
    m.destroy()
    assert_gone(m, cgroup_name)
    m.destroy()


@needs_v2
def test_unified_lifecycle(cgroup_name, spawn):
    """cgroup2 alone (the unified hierarchy of a hybrid host stands in for a v2-only host)."""
    m = manager.open_manager(f"/{cgroup_name}/ctr", "ctr", root=UNIFIED, mountinfo_text=V2_LINES)
    assert m.version == "v2" and list(m.paths) == [""]
    m.create()
    child = spawn("sleep", "100")
    m.join(child.pid)
    assert proc_cgroups(child.pid)[""] == f"/{cgroup_name}/ctr"
    assert m.pids() == [child.pid]

    m.freeze()
    assert m.freezer_state() == "FROZEN"
    with open(os.path.join(m.paths[""], "cgroup.events")) as f:
        assert "frozen 1" in f.read().splitlines()
    m.thaw()
    assert m.freezer_state() == "THAWED"

    # From state, as `delete --force` does it.
    again = manager.from_state(m.to_state())
    assert os.path.exists(os.path.join(m.paths[""], "cgroup.kill"))
    again.kill_all(signal.SIGKILL)
    assert child.wait(timeout=5) == -signal.SIGKILL
    again.destroy()  # right away: rmdir may see EBUSY while the kernel finishes the exit
    assert_gone(m, cgroup_name)


@needs_v2
def test_unified_kill_all_other_signal_freezes_and_thaws(cgroup_name, spawn):
    m = manager.open_manager(f"/{cgroup_name}", "ctr", root=UNIFIED, mountinfo_text=V2_LINES)
    m.create()
    child = spawn("sleep", "100")
    m.join(child.pid)
    m.kill_all(signal.SIGTERM)
    assert child.wait(timeout=5) == -signal.SIGTERM
    assert m.freezer_state() == "THAWED"
    m.destroy()


@needs_v1
def test_v1_kill_all_gets_forked_children_too(cgroup_name, spawn):
    """No cgroup.kill on v1: freeze, signal every pid, thaw (so SIGKILL lands)."""
    m = manager.open_manager(f"/{cgroup_name}/ctr", "ctr", mountinfo_text=V1_LINES)
    assert m.version == "v1" and "" not in m.paths
    m.create()
    shell = spawn("sh", "-c", "read go; sleep 100 & sleep 100 & wait", stdin=subprocess.PIPE)
    m.join(shell.pid)
    shell.stdin.write(b"go\n")
    shell.stdin.close()
    assert wait_for(lambda: len(m.pids()) == 3), m.pids()
    m.kill_all(signal.SIGKILL)
    assert shell.wait(timeout=5) == -signal.SIGKILL
    assert wait_for(lambda: m.pids() == []), m.pids()
    assert m.freezer_state() == "THAWED"
    m.destroy()
    assert_gone(m, cgroup_name)


@needs_v1
def test_paused_container_stays_paused_on_sigterm(cgroup_name, spawn):
    m = manager.open_manager(f"/{cgroup_name}", "ctr", mountinfo_text=V1_LINES)
    m.create()
    child = spawn("sleep", "100")
    m.join(child.pid)
    m.freeze()
    m.kill_all(signal.SIGTERM)
    assert m.freezer_state() == "FROZEN"
    time.sleep(0.1)
    assert child.poll() is None  # the signal waits for the thaw
    m.thaw()
    assert child.wait(timeout=5) == -signal.SIGTERM
    m.destroy()


@needs_v1
def test_create_refuses_a_frozen_cgroup(cgroup_name):
    m = manager.open_manager(f"/{cgroup_name}", "ctr")
    m.create()
    m.freeze()
    with pytest.raises(StepError, match=f"create cgroup .*/{cgroup_name}: .*frozen"):
        manager.open_manager(f"/{cgroup_name}", "ctr").create()
    m.thaw()
    m.destroy()
    assert_gone(m, cgroup_name)


def test_destroy_removes_sub_cgroups_and_waits_for_a_dying_process(cgroup_name, spawn):
    m = manager.open_manager(f"/{cgroup_name}/ctr", "ctr")
    m.create()
    child = spawn("sleep", "100")
    m.join(child.pid)
    # The container made its own sub-cgroup in every hierarchy and moved into it.
    for cgdir in set(m.paths.values()):
        os.mkdir(os.path.join(cgdir, "inner"))
    cpuset_inner = os.path.join(m.paths.get("cpuset", "/nonexistent"), "inner")
    if os.path.isdir(cpuset_inner):
        for name in ("cpuset.cpus", "cpuset.mems"):
            with open(os.path.join(m.paths["cpuset"], name)) as src, \
                    open(os.path.join(cpuset_inner, name), "w") as dst:
                dst.write(src.read())
    for cgdir in set(m.paths.values()):
        with open(os.path.join(cgdir, "inner", "cgroup.procs"), "w") as f:
            f.write(str(child.pid))
    assert m.pids() == [child.pid]
    os.kill(child.pid, signal.SIGKILL)
    m.destroy()
    assert_gone(m, cgroup_name)


def test_mount_plan_matches_the_host(cgroup_name):
    m = manager.open_manager(f"/{cgroup_name}", "ctr")
    plan = m.mount_plan(cgroupns=True)
    mounts = [p for p in plan if p[1] != "symlink"]
    assert sorted(os.path.join("/sys/fs/cgroup", p[0]) for p in mounts) == \
        sorted(os.path.normpath(h.mountpoint) for h in HIERARCHIES)
    for subdir, fstype, data, source in mounts:
        assert source.endswith(f"/{cgroup_name}")
        assert os.path.commonpath([source, os.path.join("/sys/fs/cgroup", subdir)]) == \
            os.path.normpath(os.path.join("/sys/fs/cgroup", subdir))
    for subdir, fstype, target, _ in plan:
        if fstype == "symlink":
            assert os.path.exists(os.path.join("/sys/fs/cgroup", target))


@needs_v1
def test_sigkill_reaches_a_paused_container(cgroup_name, spawn):
    """On hybrid SIGKILL goes through cgroup.kill, but the v1 freezer still holds it until thawed."""
    m = manager.open_manager(f"/{cgroup_name}", "ctr")
    m.create()
    child = spawn("sleep", "100")
    m.join(child.pid)
    m.freeze()
    m.kill_all(signal.SIGKILL)
    assert child.wait(timeout=5) == -signal.SIGKILL
    assert m.freezer_state() == "THAWED"
    m.destroy()
    assert_gone(m, cgroup_name)


@needs_v2
def test_sigkill_reaches_a_paused_unified_cgroup(cgroup_name, spawn):
    m = manager.open_manager(f"/{cgroup_name}", "ctr", root=UNIFIED, mountinfo_text=V2_LINES)
    m.create()
    child = spawn("sleep", "100")
    m.join(child.pid)
    m.freeze()
    m.kill_all(signal.SIGKILL)
    assert child.wait(timeout=5) == -signal.SIGKILL
    m.destroy()
    assert_gone(m, cgroup_name)


def test_saved_freezer_state_matches_the_manager(cgroup_name, spawn):
    """state/start/kill derive `paused` from state.json's cgroup record without a manager
    (freezer.saved_state): it must read the freezer the manager uses, on this host's layout."""
    from pyrunc.cgroups.freezer import saved_state
    m = manager.open_manager(f"/{cgroup_name}/ctr", "ctr")
    m.create()
    child = spawn("sleep", "100")
    m.join(child.pid)
    saved = m.to_state()
    assert saved_state(saved) == m.freezer_state() == "THAWED"
    m.freeze()
    assert saved_state(saved) == m.freezer_state() == "FROZEN"
    m.thaw()
    assert saved_state(saved) == m.freezer_state() == "THAWED"
    m.kill_all(signal.SIGKILL)
    child.wait(timeout=5)
    m.destroy()
    assert saved_state(saved) == "THAWED"  # gone: nothing can hold processes
