"""Where the container's cgroup goes: runc's cgroupfs rules for absolute, relative and empty paths."""
import pytest

import hosts
from pyrunc.cgroups import manager
from pyrunc.errors import StepError


def open_v1(path, cid="ctr"):
    return manager.open_manager(path, cid, mountinfo_text=hosts.V1_MOUNTINFO,
                                self_cgroup_text=hosts.V1_SELF_CGROUP)


def open_hybrid(path, cid="ctr"):
    return manager.open_manager(path, cid, mountinfo_text=hosts.HYBRID_MOUNTINFO,
                                self_cgroup_text=hosts.HYBRID_SELF_CGROUP)


def open_v2(path, cid="ctr", own=hosts.V2_SELF_CGROUP):
    return manager.open_manager(path, cid, mountinfo_text=hosts.V2_MOUNTINFO, self_cgroup_text=own)


def test_v1_absolute_is_below_each_mountpoint():
    m = open_v1("/docker/abc")
    assert m.version == "v1"
    assert m.paths == {
        "name=systemd": "/sys/fs/cgroup/systemd/docker/abc",
        "cpu": "/sys/fs/cgroup/cpu,cpuacct/docker/abc",
        "cpuacct": "/sys/fs/cgroup/cpu,cpuacct/docker/abc",
        "net_cls": "/sys/fs/cgroup/net_cls,net_prio/docker/abc",
        "net_prio": "/sys/fs/cgroup/net_cls,net_prio/docker/abc",
        "memory": "/sys/fs/cgroup/memory/docker/abc",
        "devices": "/sys/fs/cgroup/devices/docker/abc",
        "freezer": "/sys/fs/cgroup/freezer/docker/abc",
        "cpuset": "/sys/fs/cgroup/cpuset/docker/abc",
        "pids": "/sys/fs/cgroup/pids/docker/abc",
        "blkio": "/sys/fs/cgroup/blkio/docker/abc",
    }


def test_absolute_does_not_read_self_cgroup(monkeypatch):
    from pyrunc.cgroups import mountinfo
    monkeypatch.setattr(mountinfo, "read_self_cgroup", lambda: pytest.fail("read /proc/self/cgroup"))
    manager.open_manager("/x", "ctr", mountinfo_text=hosts.V1_MOUNTINFO)


def test_v1_relative_is_below_own_cgroup():
    m = open_v1("pod1/ctr")
    assert m.paths["memory"] == "/sys/fs/cgroup/memory/user.slice/pod1/ctr"
    assert m.paths["pids"] == "/sys/fs/cgroup/pids/user.slice/user-1000.slice/session-3.scope/pod1/ctr"
    assert m.paths["cpuset"] == "/sys/fs/cgroup/cpuset/pod1/ctr"
    assert m.paths["cpuacct"] == "/sys/fs/cgroup/cpu,cpuacct/user.slice/pod1/ctr"


@pytest.mark.parametrize("path", [None, ""])
def test_v1_empty_is_own_cgroup_slash_id(path):
    m = open_v1(path, cid="abc")
    assert m.paths["memory"] == "/sys/fs/cgroup/memory/user.slice/abc"
    assert m.paths["cpuset"] == "/sys/fs/cgroup/cpuset/abc"


def test_relative_cannot_climb_out():
    assert open_v1("../../../etc").paths["memory"] == "/sys/fs/cgroup/memory/user.slice/etc"
    assert open_v1("/../../etc/x").paths["memory"] == "/sys/fs/cgroup/memory/etc/x"
    assert manager.clean_path("a//b/./c/") == "a/b/c"
    assert manager.clean_path("/") == "/"


def test_hybrid_joins_unified_too():
    m = open_hybrid("/machine/ctr")
    assert m.version == "hybrid"
    assert m.paths[""] == "/sys/fs/cgroup/unified/machine/ctr"
    assert m.paths["name=systemd"] == "/sys/fs/cgroup/systemd/machine/ctr"
    rel = open_hybrid(None, cid="abc")
    assert rel.paths[""] == "/sys/fs/cgroup/unified/user.slice/user-1000.slice/session-3.scope/abc"


def test_v2_absolute():
    m = open_v2("/machine.slice/ctr")
    assert m.version == "v2"
    assert m.paths == {"": "/sys/fs/cgroup/machine.slice/ctr"}


def test_v2_relative_is_below_the_parent_of_own_cgroup():
    # runc: the caller's own cgroup holds processes, so its children could not get controllers.
    assert open_v2("pods/ctr").paths[""] == "/sys/fs/cgroup/user.slice/user-1000.slice/pods/ctr"
    assert open_v2(None, cid="abc").paths[""] == "/sys/fs/cgroup/user.slice/user-1000.slice/abc"
    # ...but never above the hierarchy root.
    assert open_v2(None, cid="abc", own="0::/\n").paths[""] == "/sys/fs/cgroup/abc"


def test_systemd_syntax_without_systemd_driver_is_an_error_on_v1():
    with pytest.raises(StepError, match=r"system\.slice:docker:abc.*--systemd-cgroup"):
        open_v1("system.slice:docker:abc")
    with pytest.raises(StepError, match="system.slice:docker:abc"):
        open_hybrid("system.slice:docker:abc")
    # On v2 (and as an absolute path) it is just a directory name, as with runc.
    assert open_v2("system.slice:docker:abc").paths[""].endswith("/system.slice:docker:abc")
    assert open_v1("/a:b:c").paths["memory"] == "/sys/fs/cgroup/memory/a:b:c"


def test_systemd_driver_without_systemd(monkeypatch, tmp_path):
    monkeypatch.setattr(manager, "SYSTEMD_RUNNING_DIR", str(tmp_path / "missing"))
    with pytest.raises(StepError) as info:
        manager.open_manager("system.slice:docker:abc", "abc", systemd=True,
                             mountinfo_text=hosts.V2_MOUNTINFO)
    assert str(info.value) == ("cgroup: systemd cgroup driver requested but systemd is not running "
                               f"({tmp_path / 'missing'} is missing)")


def test_v1_without_devices_controller_is_refused():
    text = "\n".join(l for l in hosts.V1_MOUNTINFO.splitlines() if "devices" not in l)
    with pytest.raises(StepError, match="devices controller"):
        manager.open_manager("/x", "ctr", mountinfo_text=text)


def test_dind_relative_path():
    m = manager.open_manager(None, "c1", mountinfo_text=hosts.DIND_V1_MOUNTINFO,
                             self_cgroup_text=hosts.DIND_V1_SELF_CGROUP)
    assert m.paths == {"memory": "/sys/fs/cgroup/memory/sub/c1", "devices": "/sys/fs/cgroup/devices/c1"}
