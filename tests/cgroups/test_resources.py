"""linux.resources -> cgroup files: conversions, v1 writes, and v2 files with exact contents in a
directory standing in for cgroupfs."""
import os

import pytest

from pyrunc.cgroups import apply as ap
from pyrunc.cgroups import resources as rs
from pyrunc.cgroups.v1 import V1Manager
from pyrunc.cgroups.v2 import V2Manager
from pyrunc.errors import InvalidSpec, StepError

MiB = 1 << 20


# --- conversions ---------------------------------------------------------------------------------

@pytest.mark.parametrize("shares,weight", [(0, 0), (2, 1), (1024, 39), (512, 20), (262144, 10000)])
def test_shares_to_weight(shares, weight):
    assert rs.shares_to_weight(shares) == weight


@pytest.mark.parametrize("blkio,io", [(0, 0), (10, 1), (500, 4950), (1000, 10000)])
def test_blkio_weight_to_io_weight(blkio, io):
    assert rs.blkio_weight_to_io_weight(blkio) == io


@pytest.mark.parametrize("swap,limit,expect", [
    (None, None, None), (0, 100, None), (-1, 100, -1), (-1, None, -1), (None, -1, -1),
    (300, 100, 200), (100, 100, 0),
])
def test_swap_to_v2(swap, limit, expect):
    assert rs.swap_to_v2(swap, limit) == expect


@pytest.mark.parametrize("swap,limit,word", [(100, None, "needs a memory limit"), (100, -1, "needs a memory"),
                                             (50, 100, "below the memory limit")])
def test_swap_to_v2_refuses(swap, limit, word):
    with pytest.raises(InvalidSpec, match=word):
        rs.swap_to_v2(swap, limit)


# --- v2 ------------------------------------------------------------------------------------------

FULL = {
    "memory": {"limit": 64 * MiB, "reservation": 32 * MiB, "swap": 96 * MiB},
    "cpu": {"shares": 1024, "quota": 50000, "period": 100000, "burst": 1000, "cpus": "0-1", "mems": "0",
            "idle": 0},
    "pids": {"limit": 0},
    "blockIO": {"weight": 500, "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}],
                "throttleWriteIOPSDevice": [{"major": 8, "minor": 0, "rate": 100}]},
    "hugepageLimits": [{"pageSize": "2MB", "limit": 4 * MiB}],
    "rdma": {"mlx4_0": {"hcaHandles": 2, "hcaObjects": 2000}},
    "unified": {"memory.oom.group": "1", "cpu.weight": "77"},
}

V2_EXPECTED = [
    ("cpu.weight", "39"),
    ("cpu.max.burst", "1000"),
    ("cpu.max", "50000 100000"),
    ("cpu.idle", "0"),
    ("cpuset.cpus", "0-1"),
    ("cpuset.mems", "0"),
    ("memory.swap.max", str(32 * MiB)),
    ("memory.max", str(64 * MiB)),
    ("memory.low", str(32 * MiB)),
    ("pids.max", "0"),
    ("io.weight", "4950"),
    ("io.max", "8:0 rbps=1048576"),
    ("io.max", "8:0 wiops=100"),
    ("hugetlb.2MB.max", str(4 * MiB)),
    ("rdma.max", "mlx4_0 hca_handle=2 hca_object=2000"),
    ("memory.oom.group", "1"),
    ("cpu.weight", "77"),
]


def test_v2_files_in_order():
    assert [(f, v) for _, f, v in rs.v2_files(FULL)] == V2_EXPECTED


def _stand_in(tmp_path, names):
    """A directory standing in for a v2 cgroup: the kernel makes control files, we never create."""
    for name in names:
        (tmp_path / name).write_text("")
    return V2Manager({"": str(tmp_path)}, [])


def test_v2_apply_writes_exact_contents(tmp_path):
    names = {f for f, _ in V2_EXPECTED}
    m = _stand_in(tmp_path, names)
    ap.apply(m, FULL, update=True)  # update: no device program (that needs a real cgroup)
    last = dict(V2_EXPECTED)        # a file written twice keeps the second value (io.max, cpu.weight)
    for name in names:
        assert (tmp_path / name).read_text() == last[name], name
    assert sorted(os.listdir(tmp_path)) == sorted(names), "apply created a file"


def test_v2_bfq_takes_blkio_weights_as_they_are(tmp_path):
    res = {"blockIO": {"weight": 500, "weightDevice": [{"major": 8, "minor": 16, "weight": 300}]}}
    assert rs.v2_files(res, bfq=True) == [("io", "io.bfq.weight", "500"),
                                          ("io", "io.bfq.weight", "8:16 300")]
    m = _stand_in(tmp_path, ["io.bfq.weight"])
    ap.apply(m, res, update=True)
    assert (tmp_path / "io.bfq.weight").read_text() == "8:16 300"


@pytest.mark.parametrize("res,expect", [
    ({"memory": {"limit": -1}}, [("memory.swap.max", "max"), ("memory.max", "max")]),
    ({"memory": {"limit": 100, "swap": -1}}, [("memory.swap.max", "max"), ("memory.max", "100")]),
    ({"memory": {"limit": 100, "swap": 100}}, [("memory.swap.max", "0"), ("memory.max", "100")]),
    ({"pids": {"limit": -1}}, [("pids.max", "max")]),
    ({"pids": {"limit": 0}}, [("pids.max", "0")]),
    ({"pids": {"limit": 12}}, [("pids.max", "12")]),
    ({"cpu": {"quota": -1}}, [("cpu.max", "max")]),
    ({"cpu": {"period": 20000}}, [("cpu.max", "max 20000")]),
    ({"cpu": {"quota": 1000}}, [("cpu.max", "1000")]),
    ({"memory": {"limit": 0}}, []),
])
def test_v2_value_conventions(res, expect):
    assert [(f, v) for _, f, v in rs.v2_files(res)] == expect


def test_v2_missing_file_names_it(tmp_path):
    m = _stand_in(tmp_path, [])
    with pytest.raises(StepError, match=r"write '7' to .*pids\.max: no such file"):
        ap.apply(m, {"pids": {"limit": 7}}, update=True)


@pytest.mark.parametrize("key", ["cgroup.procs", "../memory.max", "nodot", "memory/max"])
def test_unified_refuses_non_files(key):
    with pytest.raises(InvalidSpec, match="unified"):
        rs.unified_files({key: "1"})


def test_v2_refuses_realtime():
    with pytest.raises(InvalidSpec, match="realtime"):
        rs.v2_files({"cpu": {"realtimeRuntime": 100}})


def test_non_integer_is_named():
    with pytest.raises(InvalidSpec, match=r"linux\.resources\.memory\.limit: must be an integer"):
        rs.v2_files({"memory": {"limit": "1G"}})


# --- v1 ------------------------------------------------------------------------------------------

def test_v1_files():
    res = {"memory": {"limit": 64 * MiB, "swap": 96 * MiB, "reservation": 1, "swappiness": 10,
                      "disableOOMKiller": True, "kernelTCP": 5},
           "cpu": {"shares": 512, "quota": 50000, "period": 100000, "realtimeRuntime": 10,
                   "realtimePeriod": 20, "cpus": "0"},
           "pids": {"limit": -1},
           "blockIO": {"weight": 100, "leafWeight": 50,
                       "weightDevice": [{"major": 8, "minor": 0, "weight": 200, "leafWeight": 20}],
                       "throttleWriteBpsDevice": [{"major": 8, "minor": 0, "rate": 99}]},
           "hugepageLimits": [{"pageSize": "1GB", "limit": 1 << 30}],
           "network": {"classID": 1048577, "priorities": [{"name": "eth0", "priority": 5}]}}
    assert rs.v1_files(res) == [
        ("memory", "memory.limit_in_bytes", str(64 * MiB)),
        ("memory", "memory.memsw.limit_in_bytes", str(96 * MiB)),
        ("memory", "memory.soft_limit_in_bytes", "1"),
        ("memory", "memory.kmem.tcp.limit_in_bytes", "5"),
        ("memory", "memory.swappiness", "10"),
        ("memory", "memory.oom_control", "1"),
        ("cpu", "cpu.shares", "512"),
        ("cpu", "cpu.cfs_period_us", "100000"),
        ("cpu", "cpu.cfs_quota_us", "50000"),
        ("cpu", "cpu.rt_period_us", "20"),
        ("cpu", "cpu.rt_runtime_us", "10"),
        ("cpuset", "cpuset.cpus", "0"),
        ("pids", "pids.max", "max"),
        ("blkio", "blkio.weight", "100"),
        ("blkio", "blkio.leaf_weight", "50"),
        ("blkio", "blkio.weight_device", "8:0 200"),
        ("blkio", "blkio.leaf_weight_device", "8:0 20"),
        ("blkio", "blkio.throttle.write_bps_device", "8:0 99"),
        ("hugetlb", "hugetlb.1GB.limit_in_bytes", str(1 << 30)),
        ("net_cls", "net_cls.classid", "1048577"),
        ("net_prio", "net_prio.ifpriomap", "eth0 5"),
    ]


def test_v1_unlimited_memory_means_unlimited_swap():
    assert rs.v1_files({"memory": {"limit": -1}}) == [
        ("memory", "memory.limit_in_bytes", "-1"), ("memory", "memory.memsw.limit_in_bytes", "-1")]


def test_v1_swappiness_range():
    with pytest.raises(InvalidSpec, match="swappiness"):
        rs.v1_files({"memory": {"swappiness": 101}})


def test_device_rules_and_v1_lines():
    rules = rs.device_rules({"devices": [{"allow": False, "access": "rwm"},
                                         {"allow": True, "type": "c", "major": 10, "minor": -1,
                                          "access": "r"}]},
                            [{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229},
                             {"path": "/dev/fifo", "type": "p"}])
    assert rules[:4] == [{"allow": False, "type": "a", "major": None, "minor": None, "access": "rwm"},
                         {"allow": True, "type": "c", "major": 10, "minor": None, "access": "r"},
                         {"allow": True, "type": "c", "major": None, "minor": None, "access": "m"},
                         {"allow": True, "type": "b", "major": None, "minor": None, "access": "m"}]
    assert all(r.get("minor") != 229 for r in rules)  # linux.devices allows nothing by itself
    files = rs.v1_files({}, devices=rules)
    assert files[:3] == [("devices", "devices.deny", "a *:* rwm"), ("devices", "devices.allow", "b *:* m"),
                         ("devices", "devices.allow", "c *:* m")]
    assert ("devices", "devices.allow", "c 1:3 rwm") in files and ("devices", "devices.allow", "c 10:* r") in files
    assert rs.v1_files({}, devices=rules, update=True) == []


def test_allow_all_then_deny_becomes_a_v1_deny_list():
    rules = rs.device_rules({"devices": [{"allow": True, "access": "rwm"},
                                         {"allow": False, "type": "c", "major": 1, "minor": 11, "access": "w"}]})
    assert rs.v1_files({}, devices=rules) == [("devices", "devices.allow", "a *:* rwm"),
                                              ("devices", "devices.deny", "c 1:11 w")]


@pytest.mark.parametrize("bad,word", [({"access": "rwx"}, "access"), ({"type": "z"}, "type")])
def test_device_rules_refuse(bad, word):
    with pytest.raises(InvalidSpec, match=word):
        rs.device_rules({"devices": [{"allow": True, **bad}]})


def _v1_stand_in(tmp_path, files):
    d = tmp_path / "memory"
    d.mkdir()
    for name, value in files.items():
        (d / name).write_text(value)
    return V1Manager({"memory": str(d)}, []), d


class _Recorder:
    def __init__(self, monkeypatch):
        self.writes = []
        real = ap.fs.write

        def write(path, value):
            self.writes.append((os.path.basename(path), value))
            real(path, value)
        monkeypatch.setattr(ap.fs, "write", write)


def test_v1_raising_limits_writes_memsw_first(tmp_path, monkeypatch):
    m, d = _v1_stand_in(tmp_path, {"memory.limit_in_bytes": str(32 * MiB),
                                   "memory.memsw.limit_in_bytes": str(32 * MiB)})
    rec = _Recorder(monkeypatch)
    ap.apply(m, {"memory": {"limit": 64 * MiB, "swap": 64 * MiB}}, update=True)
    assert rec.writes == [("memory.memsw.limit_in_bytes", str(64 * MiB)),
                          ("memory.limit_in_bytes", str(64 * MiB))]


def test_v1_lowering_limits_writes_limit_first(tmp_path, monkeypatch):
    m, d = _v1_stand_in(tmp_path, {"memory.limit_in_bytes": str(64 * MiB),
                                   "memory.memsw.limit_in_bytes": str(64 * MiB)})
    rec = _Recorder(monkeypatch)
    ap.apply(m, {"memory": {"limit": 32 * MiB, "swap": 32 * MiB}}, update=True)
    assert rec.writes == [("memory.limit_in_bytes", str(32 * MiB)),
                          ("memory.memsw.limit_in_bytes", str(32 * MiB))]


def test_v1_missing_controller_is_named(tmp_path):
    m = V1Manager({"memory": str(tmp_path)}, [])
    with pytest.raises(StepError, match="pids cgroup controller is not mounted"):
        ap.apply(m, {"pids": {"limit": 3}}, update=True)


def test_v1_unified_needs_v2(tmp_path):
    m = V1Manager({"memory": str(tmp_path)}, [])
    with pytest.raises(InvalidSpec, match="unified"):
        ap.apply(m, {"unified": {"memory.high": "1"}}, update=True)


def test_check_before_update(tmp_path):
    (tmp_path / "memory.current").write_text(str(50 * MiB))
    (tmp_path / "memory.max").write_text("max")
    m = V2Manager({"": str(tmp_path)}, [])
    with pytest.raises(StepError, match="below the current usage"):
        ap.apply(m, {"memory": {"limit": 10 * MiB, "checkBeforeUpdate": True}}, update=True)
    assert (tmp_path / "memory.max").read_text() == "max"
    ap.apply(m, {"memory": {"limit": 100 * MiB, "checkBeforeUpdate": True}}, update=True)
    assert (tmp_path / "memory.max").read_text() == str(100 * MiB)


@pytest.mark.parametrize("version", ["v1", "hybrid"])
def test_unified_refused_on_v1_before_anything_is_written(version):
    from pyrunc.cgroups.apply import apply

    class Manager:
        paths = {"memory": "/nonexistent/memory", "": "/nonexistent/unified"}

        def before_apply(self, *args):  # the systemd driver's hook: must not be reached either
            raise AssertionError("reached the systemd driver")

    manager = Manager()
    manager.version = version
    with pytest.raises(InvalidSpec, match="cannot use unified on cgroup v1"):
        apply(manager, {"memory": {"limit": 1 << 20}, "unified": {"memory.max": "1048576"}})
