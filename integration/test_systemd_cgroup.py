"""--systemd-cgroup: containers in a transient scope unit started over D-Bus.

pid 1 here is not systemd (and a `systemd --user` needs a delegated v2 tree this hybrid host does
not have), so the systemd side is integration/helpers/fake_systemd.py on a private dbus-daemon:
it really makes the scope's cgroups and moves the pids, so the container truly runs in them. The
runtime runs in a mount namespace where /run/systemd/system exists (systemd's own "booted" test),
with DBUS_SYSTEM_BUS_ADDRESS naming the private bus; the host's /run is not touched.
"""
import json
import os
import subprocess
import sys
import time

import pytest

from integration.helpers import mountinfo
from integration.helpers.runtime import drop_namespace, wait_for

# runc 1.1 passes the lifecycle test against the same stand-in (a check of the stand-in's
# fidelity), but leaves the slice directories it made in cpuset/freezer and words its errors
# differently, so the file as a whole is pyrunc's.
pytestmark = pytest.mark.pyrunc_only

HERE = os.path.dirname(os.path.abspath(__file__))
SLICE = "pyrunctest-sd.slice"  # nested: lives in pyrunctest.slice/pyrunctest-sd.slice
SLICE_PATH = "pyrunctest.slice/pyrunctest-sd.slice"

BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_type="method_return"/>
    <allow send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="signal"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
  </policy>
</busconfig>
"""


def _stop(proc):
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def fake_systemd(tmp_path):
    """(bus address, calls()) of a private bus with the fake systemd on it."""
    socket = str(tmp_path / "bus.sock")
    config = tmp_path / "bus.conf"
    config.write_text(BUS_CONFIG.format(socket=socket))
    daemon = subprocess.Popen(["dbus-daemon", "--nofork", "--nopidfile", f"--config-file={config}"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    fake = None
    try:
        wait_for(lambda: os.path.exists(socket) or daemon.poll() is not None, what="dbus-daemon")
        assert daemon.poll() is None, daemon.stderr.read().decode()
        address = f"unix:path={socket}"
        env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=address)
        fake = subprocess.Popen([sys.executable, os.path.join(HERE, "helpers", "fake_systemd.py")],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        line = fake.stdout.readline().decode().strip()
        assert line == "ready", f"fake systemd: {line} {fake.stderr.read().decode() if fake.poll() is not None else ''}"

        def calls():
            from jeepney import DBusAddress, new_method_call
            from jeepney.io.blocking import open_dbus_connection
            with open_dbus_connection(bus=address) as conn:
                msg = new_method_call(DBusAddress("/org/freedesktop/systemd1", "org.freedesktop.systemd1",
                                                  "org.pyrunc.Test"), "Calls")
                return json.loads(conn.send_and_get_reply(msg, timeout=10).body[0])
        yield address, calls
    finally:
        if fake is not None:
            _stop(fake)
        _stop(daemon)
    for mp, _, _ in mountinfo.cgroup_hierarchies():
        assert not os.path.exists(os.path.join(mp, "pyrunctest.slice")), f"slice left in {mp}"


@pytest.fixture
def sd_runtime(runtime, fake_systemd, tmp_path):
    """The runtime fixture, its binary wrapped to see systemd running and the private bus, and
    always given --systemd-cgroup."""
    address, calls = fake_systemd
    wrapper = tmp_path / "wrap" / os.path.basename(runtime.binary)
    wrapper.parent.mkdir()
    wrapper.write_text(
        "#!/bin/sh\n"
        f"export DBUS_SYSTEM_BUS_ADDRESS='{address}'\n"
        "exec unshare -m --propagation private sh -c "
        "'mount -t tmpfs -o size=64k,mode=755 pyrunc-test-systemd /run/systemd && "
        "mkdir /run/systemd/system && exec \"$0\" --systemd-cgroup \"$@\"' "
        f"'{runtime.binary}' \"$@\"\n")
    wrapper.chmod(0o755)
    real = runtime.binary
    runtime.binary = str(wrapper)
    runtime.calls = calls
    yield runtime
    # the runtime fixture's own finalizer deletes what is left through the wrapper, then checks
    runtime.binary_real = real


def _proc_cgroup(pid):
    with open(f"/proc/{pid}/cgroup") as f:
        return {c: path for _, ctrls, path in (l.split(":", 2) for l in f.read().splitlines())
                for c in (ctrls.split(",") if ctrls else [""])}


def _scope_dirs(rel):
    return [os.path.join(mp, rel) for mp, _, _ in mountinfo.cgroup_hierarchies()]


def _read(path):
    with open(path) as f:
        return f.read().strip()


def _starts(calls, unit):
    return [c for c in calls if c["method"] == "StartTransientUnit" and c["body"][0] == unit]


def test_lifecycle_in_a_transient_scope(sd_runtime):
    rt = sd_runtime
    config = rt.config(["sleep", "1000"])
    config["linux"]["resources"] = {"memory": {"limit": 64 << 20}, "pids": {"limit": 42},
                                    "cpu": {"quota": 50000, "period": 100000}}
    id = rt.new_id()
    c = rt.bundle(config, id=id, cgroups_path=f"{SLICE}:pyrunc:{id}")
    c.create("--pid-file", os.path.join(c.bundle, "pid"))
    unit = f"pyrunc-{id}.scope"
    rel = f"{SLICE_PATH}/{unit}"
    pid = c.pid

    # the container's init is in the scope in every hierarchy (systemd's and the runtime's own)
    for ctrl, path in _proc_cgroup(pid).items():
        assert path == "/" + rel, f"{ctrl}: {path}"
    # systemd was asked for the scope with the intermediate's pid, delegation and the limits
    record = rt.calls()
    (start,) = _starts(record["calls"], unit)
    assert start["body"][1] == "replace" and start["body"][3] == []
    props = {name: value for name, value in start["body"][2]}
    assert props["Slice"] == ["s", SLICE]
    assert props["Delegate"] == ["b", True]
    assert props["Description"] == ["s", f"libcontainer container {id}"]
    (intermediate,) = props["PIDs"][1]
    assert intermediate != pid  # the intermediate, which forked init into the new pid namespace
    assert props["MemoryLimit"] == ["t", 64 << 20]
    assert props["TasksMax"] == ["t", 42]
    assert props["CPUQuotaPerSecUSec"] == ["t", 500000]
    assert props["DevicePolicy"] == ["s", "strict"]
    assert ["char-pts", "rwm"] in props["DeviceAllow"][1]
    assert unit in record["units"]
    # ... and the limits hold in the files of the scope's cgroup
    assert _read(f"/sys/fs/cgroup/memory/{rel}/memory.limit_in_bytes") == str(64 << 20)
    assert _read(f"/sys/fs/cgroup/pids/{rel}/pids.max") == "42"
    assert _read(f"/sys/fs/cgroup/cpu/{rel}/cpu.cfs_quota_us") == "50000"

    c.start()
    assert c.status == "running"
    ps = rt.run("ps", "--format", "json", id)
    assert pid in json.loads(ps.stdout)
    rt.run("pause", id)
    assert c.status == "paused"
    assert _read(f"/sys/fs/cgroup/freezer/{rel}/freezer.state") == "FROZEN"
    rt.run("resume", id)
    assert c.status == "running"

    rt.run("update", "--pids-limit", "17", id)
    assert _read(f"/sys/fs/cgroup/pids/{rel}/pids.max") == "17"
    sets = [x for x in rt.calls()["calls"] if x["method"] == "SetUnitProperties"]
    assert sets and sets[-1]["body"][:2] == [unit, True]
    assert ["TasksMax", ["t", 17]] in sets[-1]["body"][2]

    c.kill("KILL")
    c.wait_status("stopped")
    c.delete()
    record = rt.calls()
    assert unit not in record["units"], "the scope unit is still loaded after delete"
    assert any(x["method"] == "StopUnit" and x["body"] == [unit, "replace"] for x in record["calls"])
    for d in _scope_dirs(rel):
        assert not os.path.exists(d), f"{d} left after delete"


def test_default_cgroups_path_is_runc_scope_in_system_slice(sd_runtime):
    rt = sd_runtime
    c = rt.bundle(["sleep", "1000"], cgroups_path=None)
    c.create()
    unit = f"runc-{c.id}.scope"
    assert _starts(rt.calls()["calls"], unit)
    assert _proc_cgroup(c.pid)["memory"] == f"/system.slice/{unit}"
    c.delete(force=True)
    assert unit not in rt.calls()["units"]
    for d in _scope_dirs(f"system.slice/{unit}"):
        assert not os.path.exists(d), f"{d} left after delete --force"


def test_run_foreground_leaves_nothing(sd_runtime):
    rt = sd_runtime
    id = rt.new_id()
    config = rt.config(["sh", "-c", "cat /proc/self/cgroup"])
    drop_namespace(config, "cgroup")  # so the container sees its cgroup's host path
    c = rt.bundle(config, id=id, cgroups_path=f"{SLICE}:pyrunc:{id}")
    cp = c.run()
    for line in cp.stdout.splitlines():
        assert line.endswith(f":/{SLICE_PATH}/pyrunc-{id}.scope"), cp.stdout
    assert f"pyrunc-{id}.scope" not in rt.calls()["units"]
    for d in _scope_dirs(f"{SLICE_PATH}/pyrunc-{id}.scope"):
        assert not os.path.exists(d)


def test_a_second_container_on_the_same_unit_fails_cleanly(sd_runtime):
    rt = sd_runtime
    id = rt.new_id()
    first = rt.bundle(["sleep", "1000"], id=id, cgroups_path=f"{SLICE}:pyrunc:{id}")
    first.create()
    second = rt.bundle(["sleep", "1000"], cgroups_path=f"{SLICE}:pyrunc:{id}")
    cp = rt.fail("create", "--bundle", second.bundle, second.id)
    assert f"pyrunc-{id}.scope" in cp.stderr and "already exists" in cp.stderr, cp.stderr
    assert second.id not in rt.list_ids()
    # the failure must not have torn down the first container's unit
    assert f"pyrunc-{id}.scope" in rt.calls()["units"]
    assert first.status == "created"
    first.delete(force=True)


def test_bad_cgroups_path_is_a_clear_error(sd_runtime):
    rt = sd_runtime
    c = rt.bundle(["true"], cgroups_path="/not/systemd/syntax")
    cp = rt.fail("create", "--bundle", c.bundle, c.id)
    assert "slice:prefix:name" in cp.stderr and "for systemd cgroups" in cp.stderr, cp.stderr
    assert rt.calls()["calls"] == []
    c2 = rt.bundle(["true"], cgroups_path="bad--name.slice:p:x")
    cp = rt.fail("create", "--bundle", c2.bundle, c2.id)
    assert "invalid slice name 'bad--name.slice'" in cp.stderr


def test_without_systemd_a_clear_error(runtime):
    c = runtime.bundle(["true"], cgroups_path="system.slice:pyrunc:x")
    cp = runtime.fail("--systemd-cgroup", "create", "--bundle", c.bundle, c.id)
    if os.path.isdir("/run/systemd/system"):
        pytest.fail("this test expects a host where systemd is not pid 1")
    assert "systemd is not running (/run/systemd/system is missing)" in cp.stderr
    assert c.id not in runtime.list_ids()
