"""A child joining its cgroups by itself (cgroups/selfjoin.py), against the real hierarchies.

The child writes what /proc/self/cgroup says into a pipe; the test compares it with the manager's
paths. Children always _exit; cgroups are swept by the cgroup_name fixture.
"""
import os

import pytest

from pyrunc.cgroups import manager, mountinfo
from pyrunc.cgroups.selfjoin import SelfJoin
from pyrunc.errors import StepError

pytestmark = [pytest.mark.root, pytest.mark.skipif(os.geteuid() != 0, reason="needs root")]

HIERARCHIES = mountinfo.cgroup_hierarchies(mountinfo.read_mountinfo())


def _run_child(joiner, body=None):
    """Fork with the joiner; the child joins, then, once the parent has done its part (a v2 move by
    cgroup.procs, as spawn's init waits for), reports /proc/self/cgroup (or its error)."""
    r, w = os.pipe()
    go_r, go_w = os.pipe()
    pid = joiner.fork()
    if pid == 0:
        try:
            os.close(r)
            os.close(go_w)
            try:
                joiner.join_child()
                os.read(go_r, 1)  # the parent's join_parent is done (or failed: EOF)
                with open("/proc/self/cgroup") as f:
                    report = "OK\n" + f.read()
            except StepError as e:
                report = "ERR\n" + str(e)
            os.write(w, report.encode())
        finally:
            os._exit(0)
    os.close(w)
    os.close(go_r)
    try:
        try:
            joiner.join_parent(pid)
        finally:
            os.close(go_w)
        chunks = []
        while True:
            data = os.read(r, 65536)
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(r)
        os.waitpid(pid, 0)
    kind, _, rest = b"".join(chunks).decode().partition("\n")
    return kind, rest


def _expected(m):
    """hierarchy key -> the cgroup path /proc/<pid>/cgroup shows for a member of the manager's cgroup."""
    out = {}
    for h in m.hierarchies:
        cgdir = m.paths[h.keys[0]]
        rel = "/" + os.path.relpath(cgdir, h.mountpoint).lstrip(".")
        out[h.keys[0]] = os.path.normpath(os.path.join(h.root, rel.lstrip("/")))
    return out


def _assert_child_joins_every_hierarchy(cgroup_name):
    m = manager.open_manager(f"/{cgroup_name}/ctr", "ctr")
    m.create()
    try:
        kind, report = _run_child(m.self_join())
        assert kind == "OK", report
        seen = mountinfo.parse_self_cgroup(report)
        for key, path in _expected(m).items():
            assert seen.get(key) == path, (key, seen)
    finally:
        m.destroy()


def test_child_joins_every_hierarchy(cgroup_name):
    _assert_child_joins_every_hierarchy(cgroup_name)


@pytest.mark.skipif(not any(h.version == "v2" for h in HIERARCHIES), reason="no cgroup2 hierarchy")
def test_v2_move_falls_back_to_the_runtime(cgroup_name, monkeypatch):
    """A kernel without CLONE_INTO_CGROUP: the runtime moves the child through cgroup.procs."""
    from pyrunc.sys import calls
    monkeypatch.setattr(calls, "clone_fork", lambda namespaces=0, cgroup_fd=None: None)
    _assert_child_joins_every_hierarchy(cgroup_name)


@pytest.mark.skipif(not os.path.isdir("/sys/fs/cgroup/cpuset"), reason="no cgroup v1 cpuset hierarchy")
def test_join_failure_names_the_step_and_file(cgroup_name):
    """A v1 cpuset cgroup without cpus refuses members (ENOSPC): the child reports which file."""
    cgdir = os.path.join("/sys/fs/cgroup/cpuset", cgroup_name)
    os.mkdir(cgdir)  # cpuset.cpus stays empty
    joiner = SelfJoin([("v1", cgdir)])
    kind, report = _run_child(joiner)
    assert kind == "ERR"
    assert report.startswith(f"join cgroup {cgdir}/tasks:"), report
    assert report.endswith("no space left on device"), report


def test_missing_cgroup_fails_before_any_fork(cgroup_name):
    with pytest.raises(StepError) as e:
        SelfJoin([("v1", f"/sys/fs/cgroup/pids/{cgroup_name}/absent")])
    assert str(e.value).startswith(f"open cgroup /sys/fs/cgroup/pids/{cgroup_name}/absent/tasks")


@pytest.mark.skipif(not os.path.isdir("/sys/fs/cgroup/cpuset"), reason="no cgroup v1 cpuset hierarchy")
def test_init_made_by_one_clone_reports_a_failed_join(cgroup_name):
    """process/spawn.py's direct path: init, born by the clone, joins v1 itself; a refusal goes to
    the runtime over the sync pipe as for the intermediate, and init exits before doing anything."""
    from pyrunc.linux.namespaces import NamespacePlan
    from pyrunc.process import spawn, sync
    from pyrunc.process.init import InitArgs
    cgdir = os.path.join("/sys/fs/cgroup/cpuset", cgroup_name)
    os.mkdir(cgdir)  # cpuset.cpus stays empty: ENOSPC for a new member
    read_fd, write_fd = os.pipe()
    args = InitArgs({}, "/nonexistent", "/nonexistent", NamespacePlan([]), None, -1, write_fd)
    try:
        started = spawn._clone_init(args, SelfJoin([("v1", cgdir)]), 0, read_fd)
    finally:
        os.close(write_fd)
    assert started is not None, "this kernel has clone3"
    try:
        receiver = sync.Receiver(read_fd)
        message = receiver.next()
        assert receiver.next() is None  # nothing more: it exited
    finally:
        os.close(read_fd)
        _, status = os.waitpid(started.init_pid, 0)
    assert os.waitstatus_to_exitcode(status) == 1
    assert message["type"] == sync.ERROR
    assert message["message"].startswith(f"join cgroup {cgdir}/tasks:"), message
    assert message["message"].endswith("no space left on device"), message


@pytest.mark.skipif(not any(h.version == "v2" for h in HIERARCHIES), reason="no cgroup2 hierarchy")
@pytest.mark.parametrize("clone_into", [True, False])
def test_child_survives_a_cgroup_that_has_seen_cgroup_kill(cgroup_name, clone_into):
    """Linux 6.14+ SIGKILLs a child cloned (CLONE_INTO_CGROUP) into a cgroup2 dir whose cgroup.kill
    count differs from its parent's cgroup's: pyrunc's init never became ready in a cgroup that
    had seen a `delete`. Whether the manager says the dir is fresh (clone_into) or not, the child
    must live and land in the cgroup."""
    m = manager.open_manager(f"/{cgroup_name}/ctr", "ctr")
    m.create()
    try:
        kill = os.path.join(m.paths[""], "cgroup.kill")
        if not os.path.exists(kill):
            pytest.fail("cgroup.kill missing: this test needs Linux 5.14+")
        with open(kill, "w") as f:
            f.write("1")
        targets = m.join_targets()
        kind, report = _run_child(SelfJoin(targets, clone_into=clone_into))
        assert kind == "OK", report
        assert mountinfo.parse_self_cgroup(report)[""] == _expected(m)[""]
    finally:
        m.destroy()


def test_manager_clones_into_only_a_v2_dir_it_made(cgroup_name):
    """A dir that existed before may have seen a cgroup.kill: no CLONE_INTO_CGROUP there."""
    fresh = manager.open_manager(f"/{cgroup_name}/ctr", "ctr")
    fresh.create()
    try:
        again = manager.open_manager(f"/{cgroup_name}/ctr", "ctr")
        again.create()
        assert again.created == [] and not again.owned() and fresh.owned()
        if "" in fresh.paths:
            for m, pending in ((fresh, False), (again, True)):
                joiner = m.self_join()
                assert joiner._v2_pending is pending
                joiner.close()
    finally:
        fresh.destroy()
