"""pyrunc-shim's zygote (shim/pyrunc_shim/zygote.py): daemonless monitors forked from one warm
interpreter. A monitor made so is the one the launcher reported, sits in the launcher's cgroups, costs
little private memory, and outlives the zygote: a killed zygote leaves every container supervised
(exit files still written) and the next launcher starts a new one over the dead one's socket."""
import os
import signal
import socket
import subprocess

import pytest

from integration.helpers.runtime import REPO
from integration.shim.test_daemonless import _alive, _wait, shim  # noqa: F401

PY = os.path.join(REPO, ".venv", "bin", "python3")


def _socket_path():
    cp = subprocess.run([PY, "-c", "from pyrunc_shim import zygote; print(zygote.socket_path())"],
                        capture_output=True, text=True, timeout=60)
    assert cp.returncode == 0, cp.stderr
    return cp.stdout.strip()


def _zygote_pid(path):
    pidfile = path[:-len(".sock")] + ".pid"
    try:
        with open(pidfile) as f:
            return int(f.read())
    except (OSError, ValueError):
        return 0


def _private_kb(pid):
    with open(f"/proc/{pid}/smaps_rollup") as f:
        rows = dict(line.split(":", 1) for line in f.read().splitlines()[1:])
    return sum(int(rows[k].split()[0]) for k in ("Private_Clean", "Private_Dirty"))


def _cmdline(pid):
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return f.read().split(b"\0")


def _cgroups(pid):
    with open(f"/proc/{pid}/cgroup") as f:
        return f.read()


@pytest.fixture
def zygote_path():
    path = _socket_path()
    yield path
    pid = _zygote_pid(path)
    if pid and _alive(pid):  # the zygote is ours (this checkout's identity): not left running
        os.kill(pid, signal.SIGTERM)
        _wait(lambda: not _alive(pid), 30, "the zygote to exit")


def _sleeper(shim, cid):
    s = shim(cid)
    s.create(["sleep", "1000"], "-l", os.path.join(s.dir, "ctr.log"))
    s.start()
    return s


def test_monitors_fork_from_the_zygote_and_outlive_it(shim, zygote_path):  # noqa: F811
    first = _sleeper(shim, "z1")  # starts the zygote if none serves this identity yet
    _wait(lambda: _zygote_pid(zygote_path) and _alive(_zygote_pid(zygote_path)), 30, "the zygote")
    zpid = _zygote_pid(zygote_path)
    for junk in (b"", b"not marshal", b"\xff" * 64):  # probes and garbage do not stop it
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        probe.connect(zygote_path)
        if junk:
            probe.send(junk)
        probe.close()
    s = _sleeper(shim, "z2")
    assert _zygote_pid(zygote_path) == zpid and _alive(zpid)
    argv = _cmdline(s.monitor_pid)
    assert argv[-3].endswith(b"pyrunc_shim/zygote.py") and s.monitor_pid != zpid, argv
    # the monitor is where its launcher (a child of this test) was, in every hierarchy
    assert _cgroups(s.monitor_pid) == _cgroups(os.getpid())
    # the warm pages stay shared: far below a monitor of its own (~5 MB private)
    assert _private_kb(s.monitor_pid) < 2500, _private_kb(s.monitor_pid)

    os.kill(zpid, signal.SIGKILL)
    _wait(lambda: not _alive(zpid), 30, "the zygote to die")
    assert _alive(s.monitor_pid) and _alive(s.pid)
    s.rt("kill", s.cid, "KILL")
    assert s.exit_code() == 137  # still recorded by the monitor, zygote gone

    third = _sleeper(shim, "z3")  # a new zygote takes over the dead one's socket
    _wait(lambda: _zygote_pid(zygote_path) not in (0, zpid), 30, "a new zygote")
    fourth = _sleeper(shim, "z4")
    assert _cmdline(fourth.monitor_pid)[-3].endswith(b"pyrunc_shim/zygote.py")
    for c in (first, third, fourth):
        c.rt("kill", c.cid, "KILL")
        assert c.exit_code() == 137


def test_without_the_zygote_the_launcher_forks_the_monitor(shim, monkeypatch):  # noqa: F811
    monkeypatch.setenv("PYRUNC_SHIM_ZYGOTE", "0")
    s = _sleeper(shim, "nz")
    assert any(a.endswith(b"bin/pyrunc-shim") for a in _cmdline(s.monitor_pid)[:3])
    s.rt("kill", s.cid, "KILL")
    assert s.exit_code() == 137


def test_the_monitor_outlives_its_exit_command(shim):  # noqa: F811
    """As conmon: the monitor exits only once its exit command has (podman's WaitForExit wakes on
    the monitor's pidfd and then expects the exit command's cleanup done, else it sleeps 250 ms)."""
    s = shim("ec")
    mark = os.path.join(s.dir, "cleaned")
    s.create(["sleep", "1000"], "-l", os.path.join(s.dir, "ctr.log"), "--exit-command", "/bin/sh",
             "--exit-command-arg", "-c", "--exit-command-arg", f"sleep 0.5; echo done > {mark}")
    s.start()
    s.rt("kill", s.cid, "KILL")
    assert s.exit_code() == 137  # waits for the monitor to be gone
    with open(mark) as f:
        assert f.read() == "done\n"
