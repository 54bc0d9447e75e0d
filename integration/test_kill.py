"""kill: signal names and numbers, the default SIGTERM, --all, errors."""
import os
import signal

import pytest

from integration.helpers.runtime import drop_namespace, wait_for

# init of a pid namespace only gets signals it handles: trap them and record which one came
TRAPPER = ("for s in TERM USR1 HUP INT; do trap \"echo $s > /shared/signal; exit 0\" $s; done; "
           "touch /shared/ready; while :; do sleep 1000 & wait $!; done")


def _trapper(runtime):
    c = runtime.container(["sh", "-c", TRAPPER], shared=True)
    c.start()
    c.wait_file("ready")
    return c


@pytest.mark.parametrize("sig,expected", [
    ("TERM", "TERM"), ("SIGTERM", "SIGTERM"), ("15", "TERM"), ("USR1", "USR1"), ("10", "USR1"),
    ("SIGHUP", "HUP"), ("2", "INT"),
])
def test_kill_signal_forms(runtime, sig, expected):
    c = _trapper(runtime)
    c.kill(sig)
    assert c.read("signal").strip() == expected.replace("SIG", "")
    c.wait_status("stopped")
    c.delete()


def test_process_starts_with_default_signal_dispositions(runtime):
    """Only SIG_IGN survives execve: the runtime's own ignores (python's SIGPIPE and SIGXFSZ) and
    its caller's (nohup, a `cmd &` of a non-interactive shell, as CI may run us) must not reach the
    container, whose shell could not trap them (runc starts every process with default signals)."""
    ignored = (signal.SIGHUP, signal.SIGINT)
    old = [signal.signal(s, signal.SIG_IGN) for s in ignored]
    try:
        c = runtime.container(["sh", "-c", "grep SigIgn /proc/self/status > /shared/init; sleep 1000"],
                              shared=True)
        c.start()
        runtime.run("exec", c.id, "sh", "-c", "grep SigIgn /proc/self/status > /shared/exec")
    finally:
        for s, handler in zip(ignored, old):
            signal.signal(s, handler)
    for name in ("init", "exec"):
        mask = int(c.read(name).split()[1], 16)
        for s in (signal.SIGHUP, signal.SIGINT, signal.SIGPIPE, signal.SIGXFSZ):
            assert not mask & (1 << (s - 1)), f"{name}: {signal.Signals(s).name} is ignored ({mask:#x})"
    c.kill("KILL")
    c.wait_status("stopped")
    c.delete()


def test_kill_default_is_sigterm(runtime):
    c = _trapper(runtime)
    c.kill()
    assert c.read("signal").strip() == "TERM"
    c.wait_status("stopped")
    c.delete()


@pytest.mark.parametrize("sig", ["KILL", "SIGKILL", "9"])
def test_kill_sigkill_then_stopped(runtime, sig):
    c = runtime.container(["sleep", "1000"])
    c.start()
    assert c.status == "running"
    c.kill(sig)
    c.wait_status("stopped")
    assert c.state()["status"] == "stopped"
    c.delete()


def test_kill_created_container(runtime):
    """kill is allowed in `created`; SIGKILL stops the container before it ever ran."""
    c = runtime.container(["touch", "/shared/ran"], shared=True)
    c.kill("KILL")
    c.wait_status("stopped")
    assert not os.path.exists(c.path("ran"))
    c.delete()


def test_kill_stopped_container_fails(runtime):
    c = runtime.container(["true"])
    c.start()
    c.wait_status("stopped")
    runtime.fail("kill", c.id, "KILL")
    runtime.fail("kill", c.id, "15")
    c.delete()


def test_kill_nonexistent_fails(runtime):
    runtime.fail("kill", runtime.new_id(), "KILL")


def test_kill_invalid_signal_fails(runtime):
    c = runtime.container(["sleep", "1000"])
    runtime.fail("kill", c.id, "NOSUCHSIGNAL")
    assert c.status == "created", "a rejected kill must not touch the container"
    c.delete(force=True)


def test_kill_all_without_pid_namespace(runtime):
    """Without a pid namespace killing init leaves its children; --all kills every process of the
    container's cgroup."""
    config = drop_namespace(runtime.config(
        ["sh", "-c", "sleep 1000 & echo $! > /shared/child; sleep 1000 & touch /shared/ready; wait"]), "pid")
    c = runtime.container(config, shared=True)
    c.start()
    c.wait_file("ready")
    child = int(c.read("child"))
    assert os.path.exists(f"/proc/{child}")
    c.kill("KILL", all=True)
    c.wait_status("stopped")
    wait_for(lambda: not _alive(child), what=f"child {child} to die")
    c.delete()


def test_kill_all_numeric_signal_go_runc_form(runtime):
    """containerd: `kill --all ID 9`."""
    c = runtime.container(["sh", "-c", "sleep 1000 & sleep 1000 & touch /shared/ready; wait"], shared=True)
    c.start()
    c.wait_file("ready")
    runtime.run("kill", "--all", c.id, "9")
    c.wait_status("stopped")
    c.delete()


def test_kill_all_short_flag(runtime):
    c = runtime.container(["sleep", "1000"])
    c.start()
    runtime.run("kill", "-a", c.id, "KILL")
    c.wait_status("stopped")
    c.delete()


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_kill_signal_zero_checks_without_signalling(runtime):
    """`kill ID 0` (runc: the kernel's existence check): 0 while running, nothing delivered;
    the clear "not running" error once it has stopped."""
    c = _trapper(runtime)
    c.kill("0")
    assert c.status == "running"
    assert not os.path.exists(c.path("signal"))
    c.kill("KILL")
    c.wait_status("stopped")
    runtime.fail("kill", c.id, "0")
    c.delete()
