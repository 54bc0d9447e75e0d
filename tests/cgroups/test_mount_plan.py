"""What the runtime mounts for a `type: cgroup` mount, on each kind of host."""
import pytest

import hosts
from pyrunc.cgroups import manager


@pytest.mark.parametrize("cgroupns", [True, False])
def test_v2(cgroupns):
    m = manager.open_manager("/ctr", "ctr", mountinfo_text=hosts.V2_MOUNTINFO)
    assert m.mount_plan(cgroupns) == [("", "cgroup2", "", "/sys/fs/cgroup/ctr")]


def test_v1_with_comounts_and_named_hierarchy():
    m = manager.open_manager("/ctr", "ctr", mountinfo_text=hosts.V1_MOUNTINFO)
    assert m.mount_plan(True) == [
        ("systemd", "cgroup", "none,name=systemd", "/sys/fs/cgroup/systemd/ctr"),
        ("cpu,cpuacct", "cgroup", "cpu,cpuacct", "/sys/fs/cgroup/cpu,cpuacct/ctr"),
        ("net_cls,net_prio", "cgroup", "net_cls,net_prio", "/sys/fs/cgroup/net_cls,net_prio/ctr"),
        ("memory", "cgroup", "memory", "/sys/fs/cgroup/memory/ctr"),
        ("devices", "cgroup", "devices", "/sys/fs/cgroup/devices/ctr"),
        ("freezer", "cgroup", "freezer", "/sys/fs/cgroup/freezer/ctr"),
        ("cpuset", "cgroup", "cpuset", "/sys/fs/cgroup/cpuset/ctr"),
        ("pids", "cgroup", "pids", "/sys/fs/cgroup/pids/ctr"),
        ("blkio", "cgroup", "blkio", "/sys/fs/cgroup/blkio/ctr"),
        ("cpu", "symlink", "cpu,cpuacct", ""),
        ("cpuacct", "symlink", "cpu,cpuacct", ""),
        ("net_cls", "symlink", "net_cls,net_prio", ""),
        ("net_prio", "symlink", "net_cls,net_prio", ""),
    ]
    assert m.mount_plan(False) == m.mount_plan(True)


def test_hybrid_adds_unified():
    m = manager.open_manager("/ctr", "ctr", mountinfo_text=hosts.HYBRID_MOUNTINFO)
    plan = m.mount_plan(True)
    assert plan[0] == ("unified", "cgroup2", "", "/sys/fs/cgroup/unified/ctr")
    assert ("systemd", "cgroup", "none,name=systemd", "/sys/fs/cgroup/systemd/ctr") in plan
    assert [p[0] for p in plan if p[1] == "symlink"] == ["cpu", "cpuacct"]


def test_plan_survives_state_round_trip():
    m = manager.open_manager("/ctr", "ctr", mountinfo_text=hosts.HYBRID_MOUNTINFO)
    assert manager.from_state(m.to_state()).mount_plan(True) == m.mount_plan(True)
