"""create/join/destroy/pids/freezer/kill logic on a simulated cgroupfs in a tmp dir (no root needed).

FakeKernel stands in for the kernel's side of cgroupfs: mkdir makes the control files, rmdir refuses
a cgroup that still has children or processes (EBUSY) and drops the control files.
"""
import errno
import os
import signal

import pytest

from pyrunc.cgroups import freezer, fs, manager
from pyrunc.cgroups.v2 import enable_controllers
from pyrunc.errors import StepError


class FakeKernel:
    def __init__(self, top):
        self.top = str(top)
        self.kinds = {}          # mountpoint -> "v2" | "cpuset" | "freezer" | "v1"
        self.busy = {}           # path -> number of rmdir calls that fail with EBUSY
        self.rmdirs = []

    def hierarchy(self, name, kind, files=None):
        mp = os.path.join(self.top, name)
        os.makedirs(mp)
        self.kinds[mp] = kind
        self._populate(mp, kind)
        for fname, value in (files or {}).items():
            self.set(mp, fname, value)
        return mp

    def _kind(self, path):
        for mp, kind in self.kinds.items():
            if path == mp or path.startswith(mp + "/"):
                return kind
        raise AssertionError(f"{path} is in no fake hierarchy")

    def _populate(self, path, kind):
        files = {"cgroup.procs": ""}
        if kind == "v2":
            parent = os.path.dirname(path)
            inherited = ""
            if path not in self.kinds:
                inherited = self.get(parent, "cgroup.subtree_control")
            files.update({"cgroup.controllers": inherited, "cgroup.subtree_control": "",
                          "cgroup.freeze": "0", "cgroup.events": "populated 0\nfrozen 0\n",
                          "cgroup.kill": ""})
        elif kind == "cpuset":
            files.update({"cpuset.cpus": "", "cpuset.mems": ""})
        elif kind == "freezer":
            files.update({"freezer.state": "THAWED", "freezer.self_freezing": "0"})
        for name, value in files.items():
            self.set(path, name, value)

    @staticmethod
    def set(cgdir, name, value):
        with open(os.path.join(cgdir, name), "w") as f:
            f.write(value)

    @staticmethod
    def get(cgdir, name):
        with open(os.path.join(cgdir, name)) as f:
            return f.read()

    def mkdir(self, path):
        os.mkdir(path, 0o755)
        self._populate(path, self._kind(path))

    def rmdir(self, path):
        self.rmdirs.append(path)
        if not os.path.isdir(path):
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", path)
        if self.busy.get(path):
            self.busy[path] -= 1
            raise OSError(errno.EBUSY, "Device or resource busy", path)
        if fs.subdirs(path) or self.get(path, "cgroup.procs").strip():
            raise OSError(errno.EBUSY, "Device or resource busy", path)
        for name in os.listdir(path):
            os.unlink(os.path.join(path, name))
        os.rmdir(path)


@pytest.fixture
def kernel(tmp_path, monkeypatch):
    k = FakeKernel(tmp_path)
    monkeypatch.setattr(fs, "mkdir", k.mkdir)
    monkeypatch.setattr(fs, "rmdir", k.rmdir)
    return k


def mountinfo_for(kernel):
    lines = []
    for i, (mp, kind) in enumerate(kernel.kinds.items()):
        if kind == "v2":
            lines.append(f"{100 + i} 1 0:{50 + i} / {mp} rw - cgroup2 cgroup2 rw")
        else:
            ctrl = {"cpuset": "cpuset", "freezer": "freezer"}.get(kind, os.path.basename(mp))
            lines.append(f"{100 + i} 1 0:{50 + i} / {mp} rw - cgroup cgroup rw,{ctrl}")
    return "\n".join(lines) + "\n"


def open_fake(kernel, path, own=None, cid="ctr"):
    return manager.open_manager(path, cid, root=kernel.top, mountinfo_text=mountinfo_for(kernel),
                                self_cgroup_text=own)


# --- v2 --------------------------------------------------------------------------------------------

@pytest.fixture
def v2host(kernel):
    root = kernel.hierarchy("cg2", "v2", {"cgroup.controllers": "cpu memory pids",
                                          "cgroup.subtree_control": "cpu memory pids"})
    kernel.root = root
    kernel.mkdir(os.path.join(root, "user.slice"))
    kernel.mkdir(os.path.join(root, "user.slice", "session.scope"))
    return kernel


def test_v2_create_records_only_new_dirs_and_destroy_removes_only_those(v2host):
    root = v2host.root
    m = open_fake(v2host, "pods/ctr", own="0::/user.slice/session.scope\n")
    assert m.version == "v2"
    leaf = os.path.join(root, "user.slice", "pods", "ctr")
    assert m.paths == {"": leaf}
    m.create()
    assert os.path.isdir(leaf)
    assert m.created == [os.path.join(root, "user.slice", "pods"), leaf]
    # A sub-cgroup the container made for itself goes with it.
    v2host.mkdir(os.path.join(leaf, "inner"))
    m.destroy()
    assert not os.path.exists(os.path.join(root, "user.slice", "pods"))
    assert os.path.isdir(os.path.join(root, "user.slice", "session.scope"))
    assert m.created == []
    m.destroy()  # idempotent


def test_destroy_survives_state_round_trip(v2host):
    m = open_fake(v2host, "/a/b")
    m.create()
    manager.from_state(m.to_state()).destroy()
    assert not os.path.exists(os.path.join(v2host.root, "a"))


def test_existing_leaf_is_not_removed(v2host):
    existing = os.path.join(v2host.root, "pre")
    v2host.mkdir(existing)
    m = open_fake(v2host, "/pre")
    m.create()
    assert m.created == []
    m.destroy()
    assert os.path.isdir(existing)


def test_parent_shared_with_another_container_is_kept(v2host):
    a = open_fake(v2host, "/pod/a")
    a.create()
    b = open_fake(v2host, "/pod/b")
    b.create()
    assert b.created == [os.path.join(v2host.root, "pod", "b")]
    a.destroy()  # "pod" is ours but b lives in it: left alone, no error
    assert os.path.isdir(os.path.join(v2host.root, "pod", "b"))
    b.destroy()
    assert os.path.isdir(os.path.join(v2host.root, "pod"))


def test_hierarchy_root_is_never_removed(v2host):
    m = manager.from_state({"version": "v2", "paths": {"": v2host.root},
                            "hierarchies": [{"fstype": "cgroup2", "mountpoint": v2host.root}],
                            "created": [v2host.root]})
    m.destroy()
    assert os.path.isdir(v2host.root)


def test_v2_create_delegates_controllers_to_parents_not_the_leaf(v2host):
    m = open_fake(v2host, "/a/b")
    m.create()
    a = os.path.join(v2host.root, "a")
    assert v2host.get(a, "cgroup.subtree_control") == "+cpu +memory +pids"
    assert v2host.get(os.path.join(a, "b"), "cgroup.subtree_control") == ""


def test_enable_controllers_falls_back_one_by_one(tmp_path, monkeypatch):
    level = tmp_path / "lvl"
    level.mkdir()
    (level / "cgroup.controllers").write_text("cpu io memory\n")
    (level / "cgroup.subtree_control").write_text("memory\n")
    writes = []

    def write(path, value):
        writes.append(value)
        if " " in value or value == "+io":
            raise OSError(errno.EOPNOTSUPP, "refused", path)
    monkeypatch.setattr(fs, "write", write)
    enable_controllers([str(level)])
    assert writes == ["+cpu +io", "+cpu", "+io"]


def test_create_refuses_a_frozen_cgroup(v2host):
    leaf = os.path.join(v2host.root, "frozen")
    v2host.mkdir(leaf)
    v2host.set(leaf, "cgroup.freeze", "1\n")
    v2host.set(leaf, "cgroup.events", "populated 1\nfrozen 1\n")
    m = open_fake(v2host, "/frozen")
    assert m.freezer_state() == "FROZEN"
    with pytest.raises(StepError, match=f"create cgroup {leaf}: .*frozen"):
        m.create()


def test_v2_freezer_states(v2host):
    m = open_fake(v2host, "/f")
    assert m.freezer_state() == "THAWED"  # not created yet: nothing to hold
    m.create()
    leaf = m.paths[""]
    assert m.freezer_state() == "THAWED"
    v2host.set(leaf, "cgroup.freeze", "1\n")
    assert m.freezer_state() == "FREEZING"
    v2host.set(leaf, "cgroup.events", "populated 1\nfrozen 1\n")
    assert m.freezer_state() == "FROZEN"
    v2host.set(leaf, "cgroup.freeze", "0\n")  # frozen only through an ancestor
    assert m.freezer_state() == "THAWED"


def test_v2_freeze_times_out_and_thaws_back(v2host, monkeypatch):
    monkeypatch.setattr(freezer, "V2_FREEZE_TIMEOUT", 0.05)
    m = open_fake(v2host, "/f")
    m.create()
    with pytest.raises(StepError, match=r"freeze cgroup .*/f/cgroup.events: timed out"):
        m.freeze()
    assert v2host.get(m.paths[""], "cgroup.freeze") == "0"


def test_v2_kill_all_sigkill_uses_cgroup_kill(v2host):
    m = open_fake(v2host, "/k")
    m.create()
    m.kill_all(signal.SIGKILL)
    assert v2host.get(m.paths[""], "cgroup.kill") == "1"


def test_v2_kill_all_without_cgroup_kill_signals_pids(v2host, spawn, monkeypatch):
    monkeypatch.setattr(freezer, "V2_FREEZE_TIMEOUT", 0.01)  # the fake never reports "frozen 1"
    m = open_fake(v2host, "/k")
    m.create()
    os.unlink(os.path.join(m.paths[""], "cgroup.kill"))  # kernel before 5.14
    child = spawn("sleep", "100")
    v2host.set(m.paths[""], "cgroup.procs", f"{child.pid}\n")
    m.kill_all(signal.SIGKILL)
    assert child.wait(timeout=5) == -signal.SIGKILL


def test_pids_are_collected_recursively(v2host):
    m = open_fake(v2host, "/p")
    m.create()
    leaf = m.paths[""]
    v2host.mkdir(os.path.join(leaf, "sub"))
    v2host.set(leaf, "cgroup.procs", "30\n10\n")
    v2host.set(os.path.join(leaf, "sub"), "cgroup.procs", "20\n10\n")
    assert m.pids() == [10, 20, 30]
    assert open_fake(v2host, "/not-there").pids() == []


def test_destroy_retries_ebusy_then_gives_up_naming_the_path(v2host, monkeypatch):
    monkeypatch.setattr(manager, "RMDIR_TIMEOUT", 0.2)
    m = open_fake(v2host, "/busy")
    m.create()
    leaf = m.paths[""]
    v2host.busy[leaf] = 3
    m.destroy()
    assert not os.path.exists(leaf)

    m = open_fake(v2host, "/stuck/ctr")
    m.create()
    leaf = m.paths[""]
    v2host.set(leaf, "cgroup.procs", "12345\n")
    with pytest.raises(StepError, match=f"remove cgroup {leaf}: device or resource busy"):
        m.destroy()
    # Both still ours (the parent too, though its rmdir would fail as if shared): delete retries.
    assert m.created == [os.path.dirname(leaf), leaf]
    v2host.set(leaf, "cgroup.procs", "")
    manager.from_state(m.to_state()).destroy()
    assert not os.path.exists(os.path.dirname(leaf))


def test_join_writes_every_dir_once_and_names_the_file_on_error(v2host):
    m = open_fake(v2host, "/j")
    with pytest.raises(StepError, match=r"join cgroup .*/j/cgroup.procs: no such file"):
        m.join(0)
    m.create()
    m.join(4242)
    assert v2host.get(m.paths[""], "cgroup.procs") == "4242"


def test_failed_create_removes_what_it_made(v2host, monkeypatch):
    m = open_fake(v2host, "/x/y/z")
    real = v2host.mkdir

    def mkdir(path):
        if path.endswith("/z"):
            raise PermissionError(errno.EACCES, "Permission denied", path)
        real(path)
    monkeypatch.setattr(fs, "mkdir", mkdir)
    with pytest.raises(StepError, match=r"create cgroup .*/x/y/z: permission denied"):
        m.create()
    assert not os.path.exists(os.path.join(v2host.root, "x"))


# --- v1 and hybrid ---------------------------------------------------------------------------------

@pytest.fixture
def v1host(kernel):
    kernel.hierarchy("cpuset", "cpuset", {"cpuset.cpus": "0-3\n", "cpuset.mems": "0\n"})
    kernel.hierarchy("freezer", "freezer")
    kernel.hierarchy("devices", "v1")
    kernel.hierarchy("memory", "v1")
    return kernel


def test_cpuset_is_copied_down_into_empty_levels(v1host):
    top = v1host.top
    a = os.path.join(top, "cpuset", "a")
    v1host.mkdir(a)
    v1host.set(a, "cpuset.cpus", "0-1\n")
    v1host.set(a, "cpuset.mems", "0\n")
    m = open_fake(v1host, "/a/b/c")
    assert m.version == "v1"
    m.create()
    for d in ("a/b", "a/b/c"):
        assert v1host.get(os.path.join(top, "cpuset", d), "cpuset.cpus") == "0-1"
        assert v1host.get(os.path.join(top, "cpuset", d), "cpuset.mems") == "0"
    assert not os.path.exists(os.path.join(top, "memory", "a", "b", "cpuset.cpus"))
    assert sorted(m.created) == sorted(os.path.join(top, h, d) for h in
                                       ("cpuset", "freezer", "devices", "memory")
                                       for d in ("a", "a/b", "a/b/c") if not (h == "cpuset" and d == "a"))
    m.destroy()
    assert os.path.isdir(a) and not os.path.exists(os.path.join(a, "b"))
    assert not os.path.exists(os.path.join(top, "memory", "a"))


def test_cpuset_keeps_values_already_set(v1host):
    top = v1host.top
    a = os.path.join(top, "cpuset", "a")
    v1host.mkdir(a)
    v1host.set(a, "cpuset.cpus", "2\n")  # mems left empty
    m = open_fake(v1host, "/a/b")
    m.create()
    assert v1host.get(a, "cpuset.cpus") == "2\n"
    assert v1host.get(a, "cpuset.mems") == "0"
    assert v1host.get(os.path.join(a, "b"), "cpuset.cpus") == "2"


def test_v1_join_and_pids_use_the_pids_or_freezer_hierarchy(v1host):
    m = open_fake(v1host, "/j")
    m.create()
    m.join(77)
    for h in ("cpuset", "freezer", "devices", "memory"):
        assert v1host.get(os.path.join(v1host.top, h, "j"), "cgroup.procs") == "77"
    v1host.set(os.path.join(v1host.top, "memory", "j"), "cgroup.procs", "1\n")
    assert m.pids() == [77]  # from the freezer hierarchy


def test_v1_freezer_states_and_frozen_refusal(v1host):
    m = open_fake(v1host, "/f")
    m.create()
    fdir = m.paths["freezer"]
    v1host.set(fdir, "freezer.state", "FREEZING\n")
    assert m.freezer_state() == "FREEZING"
    v1host.set(fdir, "freezer.state", "FROZEN\n")
    assert m.freezer_state() == "THAWED"  # frozen only through an ancestor
    v1host.set(fdir, "freezer.self_freezing", "1\n")
    assert m.freezer_state() == "FROZEN"
    with pytest.raises(StepError, match=f"create cgroup {fdir}: .*frozen"):
        open_fake(v1host, "/f").create()


def test_v1_freeze_and_thaw_write_the_state(v1host):
    m = open_fake(v1host, "/f")
    m.create()
    fdir = m.paths["freezer"]
    m.freeze()  # the fake accepts FROZEN at once
    assert v1host.get(fdir, "freezer.state") == "FROZEN"
    v1host.set(fdir, "freezer.self_freezing", "0")
    m.thaw()
    assert v1host.get(fdir, "freezer.state") == "THAWED"


def test_v1_kill_all_freezes_signals_and_thaws(v1host, spawn):
    m = open_fake(v1host, "/k")
    m.create()
    fdir = m.paths["freezer"]
    child = spawn("sleep", "100")
    v1host.set(fdir, "cgroup.procs", f"{child.pid}\n")
    m.kill_all(signal.SIGTERM)
    assert child.wait(timeout=5) == -signal.SIGTERM
    assert v1host.get(fdir, "freezer.state") == "THAWED"


def test_v1_kill_all_keeps_a_paused_container_paused_unless_sigkill(v1host, spawn):
    m = open_fake(v1host, "/k")
    m.create()
    fdir = m.paths["freezer"]
    v1host.set(fdir, "freezer.state", "FROZEN")
    v1host.set(fdir, "freezer.self_freezing", "1")
    child = spawn("sleep", "100")
    v1host.set(fdir, "cgroup.procs", f"{child.pid}\n")
    m.kill_all(signal.SIGTERM)
    assert v1host.get(fdir, "freezer.state") == "FROZEN"
    assert child.wait(timeout=5) == -signal.SIGTERM  # the fake freezer holds nothing
    v1host.set(fdir, "cgroup.procs", "")
    m.kill_all(signal.SIGKILL)
    assert v1host.get(fdir, "freezer.state") == "THAWED"


def test_no_freezer_reads_thawed_and_refuses_to_freeze(kernel):
    kernel.hierarchy("devices", "v1")
    m = open_fake(kernel, "/n")
    assert m.freezer_state() == "THAWED"
    with pytest.raises(StepError, match="no freezer"):
        m.freeze()


def test_hybrid_prefers_the_v1_freezer(kernel):
    kernel.hierarchy("unified", "v2")
    kernel.hierarchy("freezer", "freezer")
    kernel.hierarchy("devices", "v1")
    m = open_fake(kernel, "/h")
    assert m.version == "hybrid"
    m.create()
    kernel.set(m.paths[""], "cgroup.freeze", "1")
    kernel.set(m.paths[""], "cgroup.events", "frozen 1\n")
    assert m.freezer_state() == "THAWED"
    m.destroy()
    assert fs.subdirs(os.path.join(kernel.top, "unified")) == []


def test_v1_freeze_stuck_in_freezing_thaws_back_and_fails(v1host, monkeypatch):
    m = open_fake(v1host, "/f")
    m.create()
    fdir = m.paths["freezer"]
    real_read = fs.read
    monkeypatch.setattr(fs, "read", lambda p: "FREEZING\n" if p.endswith("freezer.state")
                        else real_read(p))
    monkeypatch.setattr(freezer.time, "sleep", lambda s: None)
    with pytest.raises(StepError, match=f"freeze cgroup {fdir}/freezer.state: stuck in FREEZING"):
        m.freeze()
    assert v1host.get(fdir, "freezer.state") == "THAWED"


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
@pytest.mark.parametrize("host", ["v1host", "v2host"])
def test_kill_all_on_a_vanished_cgroup_is_a_no_op(request, host, sig):
    m = open_fake(request.getfixturevalue(host), "/gone")
    assert m.version == host[:2]
    m.kill_all(sig)
    assert m.pids() == [] and m.freezer_state() == "THAWED"


# --- ownership: what a create killed half way planned, what a shared cgroup holds ----------------

def test_planned_dirs_of_a_killed_create_go_only_when_empty_and_childless(v2host):
    """state.json names the dirs create is about to make before it makes them: `delete --force`
    after a create killed among its mkdirs removes those that exist and hold nothing, never by
    force, and keeps one that another cgroup was made in since (not ours to take down)."""
    root = v2host.root
    m = open_fake(v2host, "/pods/ctr")
    pods, leaf = os.path.join(root, "pods"), os.path.join(root, "pods", "ctr")
    assert m.planned == [pods, leaf] and m.created == []
    recorded = m.to_state()  # what create wrote before its first mkdir
    v2host.mkdir(pods)
    v2host.mkdir(leaf)  # ... then it was killed
    v2host.mkdir(os.path.join(pods, "other"))  # another container's, made since
    again = manager.from_state(recorded)
    assert not again.owned()
    again.destroy()
    assert not os.path.exists(leaf)
    assert os.path.isdir(os.path.join(pods, "other"))


def test_a_cgroup_that_existed_is_not_owned_and_its_processes_are_foreign(v2host, monkeypatch):
    root = v2host.root
    v2host.mkdir(os.path.join(root, "shared"))
    v2host.set(os.path.join(root, "shared"), "cgroup.procs", f"{os.getpid()}\n")
    m = open_fake(v2host, "/shared")
    assert m.planned == []
    m.create()
    assert m.created == [] and not m.owned()
    from pyrunc.state.status import start_time
    assert m.foreign == [[os.getpid(), start_time(os.getpid())]]
    state = manager.from_state(m.to_state())
    assert state.foreign == m.foreign and not state.owned()
    killed = []
    monkeypatch.setattr(os, "kill", lambda pid, sig: killed.append(pid))
    state.signal_some(signal.SIGTERM, lambda pid: True)
    assert killed == [], "the runtime itself is never signalled"
    state.destroy()
    assert os.path.isdir(os.path.join(root, "shared")), "a cgroup create did not make is kept"
