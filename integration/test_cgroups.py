"""cgroupsPath: the container is placed in it in every hierarchy (hybrid: v1 controllers, the
name=systemd hierarchy and the unified v2 one), and delete removes it."""
import os

from integration.helpers import mountinfo
from integration.helpers.runtime import drop_namespace, set_namespace


def _proc_cgroup(pid):
    with open(f"/proc/{pid}/cgroup") as f:
        return [line.split(":", 2) for line in f.read().splitlines()]


def _dirs(cgroups_path):
    return [os.path.join(mp, cgroups_path.lstrip("/")) for mp, _, _ in mountinfo.cgroup_hierarchies()]


def test_init_in_cgroups_path_everywhere(runtime):
    c = runtime.container(["sleep", "1000"])
    pid = c.pid
    entries = _proc_cgroup(pid)
    assert entries
    for hid, ctrl, path in entries:
        assert path == c.cgroups_path, f"hierarchy {hid}:{ctrl} has {path}, want {c.cgroups_path}"
    for d in _dirs(c.cgroups_path):
        assert os.path.isdir(d), f"missing {d}"
        with open(os.path.join(d, "cgroup.procs")) as f:
            assert str(pid) in f.read().split(), f"{pid} not in {d}/cgroup.procs"
    c.start()
    assert c.status == "running"
    for hid, ctrl, path in _proc_cgroup(pid):
        assert path == c.cgroups_path
    c.kill("KILL")
    c.wait_status("stopped")
    c.delete()
    for d in _dirs(c.cgroups_path):
        assert not os.path.exists(d), f"{d} left after delete"


def test_children_stay_in_the_cgroup(runtime):
    c = runtime.container(["sh", "-c", "sleep 1000 & echo $! > /shared/child; wait"], shared=True)
    c.start()
    # the child's pid as the container sees it; find it on the host through the cgroup
    c.wait_file("child")
    procs = set()
    for d in _dirs(c.cgroups_path):
        with open(os.path.join(d, "cgroup.procs")) as f:
            procs.add(frozenset(f.read().split()))
    assert len(procs) == 1, f"hierarchies disagree on the member processes: {procs}"
    assert len(next(iter(procs))) == 2
    c.delete(force=True)
    for d in _dirs(c.cgroups_path):
        assert not os.path.exists(d)


def test_cgroup_dirs_removed_after_run(runtime):
    c = runtime.bundle(["true"])
    c.run()
    for d in _dirs(c.cgroups_path):
        assert not os.path.exists(d), f"{d} left after run"


def test_cgroup_namespace_root(runtime):
    out = runtime.sh("cat /proc/self/cgroup", config=set_namespace(runtime.config(), "cgroup")).stdout
    lines = [line.split(":", 2) for line in out.splitlines()]
    assert lines
    for hid, ctrl, path in lines:
        assert path == "/", f"{hid}:{ctrl}:{path} inside a cgroup namespace"


def test_without_cgroup_namespace_shows_full_path(runtime):
    c = runtime.bundle(drop_namespace(runtime.config(["cat", "/proc/self/cgroup"]), "cgroup"))
    out = c.run().stdout
    for hid, ctrl, path in (line.split(":", 2) for line in out.splitlines()):
        assert path == c.cgroups_path, f"{hid}:{ctrl}:{path}"


def test_nested_cgroups_path(runtime):
    c = runtime.bundle(["true"], cgroups_path=f"/pyrunc-test/{runtime.new_id()}/nested/deeper")
    c.create()
    for _, _, path in _proc_cgroup(c.pid):
        assert path == c.cgroups_path
    c.delete()
    for d in _dirs(c.cgroups_path):
        assert not os.path.exists(d)
    # the intermediate dirs the runtime created may stay (runc keeps them); clean them for the check
    parent = os.path.dirname(os.path.dirname(c.cgroups_path))
    for d in _dirs(parent):
        for sub in (os.path.join(d, "nested"), d):
            if os.path.isdir(sub):
                os.rmdir(sub)


def test_two_containers_two_cgroups(runtime):
    a = runtime.container(["sleep", "1000"])
    b = runtime.container(["sleep", "1000"])
    pa, pb = a.pid, b.pid
    assert {p for _, _, p in _proc_cgroup(pa)} == {a.cgroups_path}
    assert {p for _, _, p in _proc_cgroup(pb)} == {b.cgroups_path}
    a.delete()
    for d in _dirs(b.cgroups_path):
        assert os.path.isdir(d), "deleting one container removed another's cgroup"
    b.delete()
