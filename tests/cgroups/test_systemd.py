"""The systemd cgroup driver's pure parts: names, slice paths, properties, D-Bus call bodies."""
import pytest

from pyrunc.cgroups import dbus, manager
from pyrunc.cgroups import resources as rs
from pyrunc.cgroups import systemd as sd
from pyrunc.errors import InvalidSpec, StepError

import hosts

MAX = 2**64 - 1


# --- cgroupsPath, unit names, slices ------------------------------------------------------------

def test_cgroups_path_defaults_like_runc():
    assert sd.parse_cgroups_path(None, "abc") == ("system.slice", "runc", "abc")
    assert sd.parse_cgroups_path("", "abc") == ("system.slice", "runc", "abc")
    assert sd.parse_cgroups_path("machine.slice:docker:123", "abc") == ("machine.slice", "docker", "123")
    assert sd.parse_cgroups_path(":crio:123", "abc") == ("system.slice", "crio", "123")


@pytest.mark.parametrize("bad", ["/docker/abc", "a:b", "a:b:c:d"])
def test_cgroups_path_not_in_systemd_syntax(bad):
    with pytest.raises(InvalidSpec) as info:
        sd.parse_cgroups_path(bad, "abc")
    assert str(info.value) == ('config.json: linux.cgroupsPath: expected "slice:prefix:name" for '
                               f"systemd cgroups, got {bad!r}")


def test_unit_names():
    assert sd.unit_name("runc", "abc") == "runc-abc.scope"
    assert sd.unit_name("", "abc") == "abc.scope"
    assert sd.unit_name("docker", "my.slice") == "my.slice"


def test_expand_slice():
    assert sd.expand_slice("system.slice") == "/system.slice"
    assert sd.expand_slice("a-b-c.slice") == "/a.slice/a-b.slice/a-b-c.slice"
    assert sd.expand_slice("-.slice") == "/"


@pytest.mark.parametrize("bad", ["a--b.slice", "-a.slice", "a-.slice", ".slice", "a.scope", "a/b.slice"])
def test_expand_slice_refuses_what_systemd_refuses(bad):
    with pytest.raises(InvalidSpec, match="invalid slice name"):
        sd.expand_slice(bad)


def _open(mountinfo, cgroups_path="user-ci.slice:pyrunc:c1", pid1=None, tmp_path=None):
    return manager.open_manager(cgroups_path, "c1", systemd=True, mountinfo_text=mountinfo,
                                systemd_running_dir=str(tmp_path), pid1_cgroup_text=pid1 or "")


def test_paths_on_v2(tmp_path):
    m = _open(hosts.V2_MOUNTINFO, tmp_path=tmp_path)
    assert type(m).__name__ == "SystemdV2Manager"
    assert m.paths == {"": "/sys/fs/cgroup/user.slice/user-ci.slice/pyrunc-c1.scope"}
    assert m.unit == "pyrunc-c1.scope"


def test_paths_on_hybrid_every_hierarchy(tmp_path):
    m = _open(hosts.HYBRID_MOUNTINFO, tmp_path=tmp_path)
    assert m.version == "hybrid"
    for key in ("", "name=systemd", "memory", "cpu", "cpuacct", "devices", "freezer"):
        assert m.paths[key].endswith("/user.slice/user-ci.slice/pyrunc-c1.scope"), key
    assert m.paths["memory"] == "/sys/fs/cgroup/memory/user.slice/user-ci.slice/pyrunc-c1.scope"
    assert m.paths[""] == "/sys/fs/cgroup/unified/user.slice/user-ci.slice/pyrunc-c1.scope"


def test_paths_below_pid1_of_a_systemd_in_a_container(tmp_path):
    # systemd >= 226 sits in init.scope: its slices are siblings of it (runc's getSubsystemPath).
    pid1 = "4:memory:/docker/x/init.scope\n1:name=systemd:/docker/x/init.scope\n0::/docker/x/init.scope\n"
    m = _open(hosts.HYBRID_MOUNTINFO, "system.slice:runc:c1", pid1=pid1, tmp_path=tmp_path)
    assert m.paths["memory"] == "/sys/fs/cgroup/memory/docker/x/system.slice/runc-c1.scope"
    assert m.paths["freezer"] == "/sys/fs/cgroup/freezer/system.slice/runc-c1.scope"


def test_state_round_trip(tmp_path):
    m = _open(hosts.HYBRID_MOUNTINFO, tmp_path=tmp_path)
    data = m.to_state()
    assert (data["driver"], data["unit"], data["slice"], data["name"]) == \
        ("systemd", "pyrunc-c1.scope", "user-ci.slice", "c1")
    back = manager.from_state(data)
    assert type(back) is type(m) and back.paths == m.paths and back.unit == m.unit


def test_without_systemd_the_error_stays(tmp_path):
    with pytest.raises(StepError, match="systemd is not running"):
        manager.open_manager("", "c1", systemd=True, mountinfo_text=hosts.V2_MOUNTINFO,
                             systemd_running_dir=str(tmp_path / "none"))


# --- properties ---------------------------------------------------------------------------------

def test_unit_properties_of_a_scope():
    assert sd.unit_properties("runc-c1.scope", "system.slice", "c1", 42, v2=True) == [
        ("Description", ("s", "libcontainer container c1")),
        ("Slice", ("s", "system.slice")),
        ("Delegate", ("b", True)),
        ("PIDs", ("au", [42])),
        ("MemoryAccounting", ("b", True)), ("CPUAccounting", ("b", True)),
        ("IOAccounting", ("b", True)), ("TasksAccounting", ("b", True)),
        ("DefaultDependencies", ("b", False)),
    ]
    v1 = dict(sd.unit_properties("runc-c1.scope", "system.slice", "c1", 42, v2=False))
    assert "BlockIOAccounting" in v1 and "IOAccounting" not in v1


def test_unit_properties_of_a_slice():
    props = dict(sd.unit_properties("my.slice", "system.slice", "my.slice", None, v2=True))
    assert props["Wants"] == ("as", ["system.slice"])
    assert "PIDs" not in props and "Delegate" not in props and "Slice" not in props


RES = {"memory": {"limit": 64 << 20, "reservation": 32 << 20, "swap": 96 << 20},
       "cpu": {"shares": 1024, "quota": 50000, "period": 100000, "cpus": "0-1,3", "mems": "0"},
       "pids": {"limit": 20}, "blockIO": {"weight": 500}}


def test_v2_resource_properties():
    assert sd.resource_properties(RES, v2=True, systemd_version=252) == [
        ("MemoryMax", ("t", 64 << 20)),
        ("MemoryLow", ("t", 32 << 20)),
        ("MemorySwapMax", ("t", 32 << 20)),
        ("CPUWeight", ("t", rs.shares_to_weight(1024))),
        ("CPUQuotaPeriodUSec", ("t", 100000)),
        ("CPUQuotaPerSecUSec", ("t", 500000)),
        ("TasksMax", ("t", 20)),
        ("AllowedCPUs", ("ay", b"\x0b")),
        ("AllowedMemoryNodes", ("ay", b"\x01")),
    ]


def test_v1_resource_properties_and_old_systemd():
    assert sd.resource_properties(RES, v2=False, systemd_version=239) == [
        ("MemoryLimit", ("t", 64 << 20)),
        ("CPUShares", ("t", 1024)),
        ("CPUQuotaPerSecUSec", ("t", 500000)),
        ("BlockIOWeight", ("t", 500)),
        ("TasksMax", ("t", 20)),
    ]


def test_unlimited_values_are_infinity():
    props = dict(sd.resource_properties({"memory": {"limit": -1}, "pids": {"limit": -1},
                                         "cpu": {"quota": -1}}, v2=True, systemd_version=252))
    assert props["MemoryMax"] == ("t", MAX)
    assert props["TasksMax"] == ("t", MAX)
    assert props["CPUQuotaPerSecUSec"] == ("t", MAX)
    # pids.limit 0 is not a systemd TasksMax (runc leaves it to the file, as we do)
    assert "TasksMax" not in dict(sd.resource_properties({"pids": {"limit": 0}}, True, 252))


def test_cpu_quota_rounds_up_to_whole_percent():
    assert sd.cpu_quota_properties(33333, 100000, 241) == [("CPUQuotaPerSecUSec", ("t", 340000))]
    assert sd.cpu_quota_properties(50000, 0, 252) == [("CPUQuotaPerSecUSec", ("t", 500000))]
    assert sd.cpu_quota_properties(0, 0, 252) == []


def test_cpu_idle_is_weight_zero_from_systemd_252():
    res = {"cpu": {"idle": 1, "shares": 1024}}
    assert dict(sd.resource_properties(res, True, 252))["CPUWeight"] == ("t", 0)
    assert dict(sd.resource_properties(res, True, 251))["CPUWeight"] == ("t", 39)


def test_range_to_bits():
    assert sd.range_to_bits("0") == b"\x01"
    assert sd.range_to_bits("0-2,9") == b"\x07\x02"
    assert sd.range_to_bits("") == b"\x00"
    with pytest.raises(InvalidSpec, match="cpu.cpus"):
        sd.range_to_bits("3-1")


def test_unified_keys():
    props = sd.unified_properties({"memory.high": "1000000", "pids.max": "max", "cpu.max": "25000 50000",
                                   "cpu.weight": "7", "io.weight": "100"}, 252)
    assert props == [("MemoryHigh", ("t", 1000000)), ("TasksMax", ("t", MAX)),
                     ("CPUQuotaPeriodUSec", ("t", 50000)), ("CPUQuotaPerSecUSec", ("t", 500000)),
                     ("CPUWeight", ("t", 7))]


PROC_DEVICES = """Character devices:
  1 mem
  5 /dev/tty
136 pts

Block devices:
  8 sd
"""


def test_default_device_rules_become_an_allow_list():
    props = sd.device_properties(rs.device_rules({}, [{"path": "/dev/fuse", "type": "c", "major": 10,
                                                        "minor": 229}]), PROC_DEVICES)
    assert props[0] == ("DevicePolicy", ("s", "strict"))
    allow = props[1][1][1]
    assert props[1][0] == "DeviceAllow" and props[1][1][0] == "a(ss)"
    # in runc's order (major, minor); linux.devices adds nothing to the cgroup's rules
    assert allow == [("block-*", "m"), ("char-*", "m"), ("/dev/char/1:3", "rwm"),
                     ("/dev/char/1:5", "rwm"), ("/dev/char/1:7", "rwm"), ("/dev/char/1:8", "rwm"),
                     ("/dev/char/1:9", "rwm"), ("/dev/char/5:0", "rwm"), ("/dev/char/5:2", "rwm"),
                     ("/dev/char/10:200", "rwm"), ("char-pts", "rwm")]


def test_device_rules_replayed_in_order():
    rules = [{"allow": False, "type": "a", "major": None, "minor": None, "access": "rwm"},
             {"allow": True, "type": "b", "major": 8, "minor": None, "access": "rw"},
             {"allow": True, "type": "c", "major": 99, "minor": None, "access": "r"},  # no group
             {"allow": True, "type": "c", "major": None, "minor": 3, "access": "r"},   # no spelling
             {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
             {"allow": False, "type": "c", "major": 1, "minor": 3, "access": "w"}]
    assert sd.device_properties(rules, PROC_DEVICES) == [
        ("DevicePolicy", ("s", "strict")),
        ("DeviceAllow", ("a(ss)", [("/dev/char/1:3", "rm"), ("block-sd", "rw")]))]


def test_allow_all_and_deny_list():
    allow_all = [{"allow": True, "type": "a", "major": None, "minor": None, "access": "rwm"}]
    assert sd.device_properties(allow_all) == [("DevicePolicy", ("s", "auto")),
                                               ("DeviceAllow", ("a(ss)", []))]
    deny_one = allow_all + [{"allow": False, "type": "c", "major": 1, "minor": 3, "access": "rwm"}]
    assert sd.device_properties(deny_one) == [("DevicePolicy", ("s", "strict")),
                                              ("DeviceAllow", ("a(ss)", []))]


# --- D-Bus calls --------------------------------------------------------------------------------

def test_call_bodies():
    props = [("PIDs", ("au", [7])), ("Delegate", ("b", True))]
    assert dbus.start_transient_unit_call("runc-c1.scope", props) == (
        "StartTransientUnit", "ssa(sv)a(sa(sv))", ("runc-c1.scope", "replace", props, []))
    assert dbus.stop_unit_call("runc-c1.scope") == ("StopUnit", "ss", ("runc-c1.scope", "replace"))
    assert dbus.reset_failed_unit_call("u") == ("ResetFailedUnit", "s", ("u",))
    assert dbus.get_unit_call("u") == ("GetUnit", "s", ("u",))
    assert dbus.set_unit_properties_call("u", props) == ("SetUnitProperties", "sba(sv)", ("u", True, props))


def test_bodies_serialise_to_the_wire():
    """Every property's declared signature matches its value: jeepney refuses a mismatch."""
    from jeepney import DBusAddress, new_method_call

    rules = rs.device_rules({}, ())
    props = (sd.unit_properties("runc-c1.scope", "system.slice", "c1", 42, True)
             + sd.resource_properties(RES, True, 252, rules, PROC_DEVICES)
             + sd.unified_properties({"memory.max": "max", "cpuset.cpus": "0"}, 252))
    method, signature, body = dbus.start_transient_unit_call("runc-c1.scope", props)
    msg = new_method_call(DBusAddress(dbus.OBJECT, dbus.SYSTEMD, dbus.MANAGER), method, signature, body)
    wire = msg.serialise(serial=1)
    assert b"StartTransientUnit" in wire and b"runc-c1.scope" in wire and b"char-pts" in wire


def test_parse_version():
    assert dbus.parse_version("252 (252.22-1~deb12u1)") == 252
    assert dbus.parse_version("v255") == 255
    assert dbus.parse_version("") == 0


def test_a_unit_never_started_is_not_ours(tmp_path, monkeypatch):
    """A create whose StartTransientUnit failed (the unit belongs to another container) must not
    list, signal or remove anything in that unit's cgroup, nor ask systemd to stop it."""
    m = _open(hosts.HYBRID_MOUNTINFO, tmp_path=tmp_path)
    monkeypatch.setattr(dbus, "Systemd", lambda: pytest.fail("no D-Bus call expected"))
    assert m.pids() == []
    m.kill_all(9)
    m.destroy()
    assert m.to_state()["started"] is False
    assert manager.from_state(m.to_state()).pids() == []
    # without the field the unit is taken as started: delete then still stops it
    data = m.to_state()
    del data["started"]
    assert manager.from_state(data)._started is True
