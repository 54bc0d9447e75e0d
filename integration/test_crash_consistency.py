"""SIGKILL of the runtime at any point: the next command sees the truth, `delete --force` removes all.

runc 1.1.5, for comparison: it writes state.json only once init is nearly ready (procReady), so a
create killed before that leaves cgroup dirs that nothing finds (issue 13 measured 70 leaks in 100
random kills); a start killed between releasing init and removing exec.fifo leaves the state saying
"created" while the process runs, and a retried start waits for ever. A seccomp agent that does not
accept makes its create fail at once (Go dials without blocking).

pyrunc writes state.json ("creating", with the cgroup dirs it is about to make) before it makes
anything, adds init's identity the moment init exists, and init removes exec.fifo itself once a
start has released it.
"""
import json
import os
import random
import select
import signal
import socket
import subprocess
import time

import pytest

from integration.helpers.runtime import alive, describe, force_cleanup, is_pyrunc, wait_for


def _spawn(runtime, *args):
    """The runtime in the background, stdio away from pytest's (a detached init inherits it)."""
    return subprocess.Popen(runtime.argv(*args), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)


@pytest.mark.runc_lacks("runc records its cgroup paths only once init is nearly ready: a create "
                        "killed earlier leaves cgroup dirs no command finds")
def test_killed_create_leaves_nothing_after_delete_force(runtime):
    c = runtime.bundle(["sleep", "1000"])
    t0 = time.monotonic()
    c.create()
    full = time.monotonic() - t0
    c.delete(force=True)
    rng = random.Random(1313)
    tries, failures = 40, []
    for i in range(tries):
        proc = _spawn(runtime, "create", "--bundle", c.bundle, c.id)
        time.sleep(rng.uniform(0, full * 1.2))
        proc.kill()
        proc.wait()
        cp = runtime.run("delete", "--force", c.id, check=False)
        left = c.leftovers() if cp.returncode == 0 else [describe(cp)]
        if left:
            failures.append(f"try {i}: " + "; ".join(left))
            force_cleanup(runtime.root, c.id, c.bundle, c.cgroups_path)
    assert not failures, f"{len(failures)} of {tries} killed creates left something:\n" + "\n".join(failures)


def _state_file(runtime, c):
    try:
        with open(os.path.join(runtime.root, c.id, "state.json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def test_create_killed_after_init_is_ready_is_seen_and_removed(runtime):
    """SIGKILL of create once init is ready and before the state is final: `state` and `list` see
    it, and `delete --force` kills init and removes its cgroup dirs."""
    c = runtime.bundle(["sleep", "1000"])
    for _ in range(20):
        proc = _spawn(runtime, "create", "--bundle", c.bundle, c.id)
        pid = None
        deadline = time.monotonic() + 10
        while pid is None and proc.poll() is None and time.monotonic() < deadline:
            data = _state_file(runtime, c) or {}
            pid = data.get("pid") or data.get("init_process_pid")  # pyrunc's name, runc's
        proc.send_signal(signal.SIGSTOP)
        data = _state_file(runtime, c) or {}
        # pyrunc says whether create has finished; runc's state.json appears only at its end.
        if pid and proc.poll() is None and (data.get("creating") or not is_pyrunc()):
            break  # stopped before create finished: the case under test
        proc.send_signal(signal.SIGCONT)
        proc.wait()
        runtime.run("delete", "--force", c.id)
    else:
        pytest.fail("create always finished before it could be stopped")
    time.sleep(0.3)  # init finishes building the container and blocks on exec.fifo
    proc.kill()
    proc.wait()
    assert alive(pid), "init should be waiting for start"
    state = c.state()
    assert state["status"] in ("creating", "created") and state["id"] == c.id
    assert c.id in runtime.list_ids()
    c.delete(force=True)
    assert not alive(pid), "delete --force left init alive"
    assert c.leftovers() == []


@pytest.mark.runc_lacks("runc's state stays 'created' and a retried start waits for ever")
@pytest.mark.parametrize("got_byte", [True, False], ids=["after-init's-byte", "before-init's-byte"])
def test_start_killed_after_releasing_init(runtime, got_byte):
    """A start killed between opening exec.fifo (which releases init) and removing it: the status
    must say running and a retried start answer at once, with runc's error for a running one."""
    c = runtime.container(["sh", "-c", "touch /shared/ran; exec sleep 1000"], shared=True)
    fifo = os.path.join(runtime.root, c.id, "exec.fifo")
    fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # what start does first
    try:
        if got_byte:
            assert select.select([fd], [], [], 10)[0]
            assert os.read(fd, 1) == b"0"
    finally:
        os.close(fd)  # ... and then it is killed
    c.wait_file("ran")
    c.wait_status("running", timeout=5)
    t0 = time.monotonic()
    cp = runtime.fail("start", c.id, timeout=10)
    assert time.monotonic() - t0 < 5
    assert "cannot start an already running container" in cp.stderr
    c.delete(force=True)
    assert c.leftovers() == []


def test_seccomp_agent_that_does_not_accept_fails_create_at_once(runtime, tmp_path):
    path = str(tmp_path / "agent.sock")
    agent = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    filler = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        agent.bind(path)
        agent.listen(0)
        filler.connect(path)  # the backlog is full: one more connect would wait for an accept
        config = runtime.config(["true"])
        config["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": path,
                                      "syscalls": [{"names": ["swapoff"], "action": "SCMP_ACT_NOTIFY"}]}
        c = runtime.bundle(config)
        t0 = time.monotonic()
        cp = c.create(check=False, timeout=30)
        assert cp.returncode == 1, describe(cp)
        assert time.monotonic() - t0 < 10
        assert path in cp.stderr, describe(cp)
        assert c.leftovers() == []
    finally:
        filler.close()
        agent.close()


@pytest.mark.pyrunc_only  # runc has no state before init is nearly ready: nothing to show
def test_a_create_under_way_is_creating_and_refused(runtime, tmp_path):
    """status "creating" is not a container yet: start and exec refuse it, delete needs --force.
    create is held in a createRuntime hook (after init exists, before state.json is final) that
    blocks reading a FIFO: no race with how fast create runs."""
    gate = str(tmp_path / "gate")
    os.mkfifo(gate)
    config = runtime.config(["sleep", "1000"])
    config["hooks"] = {"createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", f"cat {gate} >/dev/null"]}]}
    c = runtime.bundle(config)
    proc = _spawn(runtime, "create", "--bundle", c.bundle, c.id)
    try:
        wait_for(lambda: (_state_file(runtime, c) or {}).get("pid") or proc.poll() is not None, timeout=30,
                 what="init's pid in state.json while create waits in its hook")
        assert proc.poll() is None, f"create exited ({proc.returncode}) before its hook held it"
        assert (_state_file(runtime, c) or {}).get("creating")
        assert c.state()["status"] == "creating"
        runtime.fail("start", c.id)
        runtime.fail("delete", c.id)
        runtime.fail("exec", c.id, "true", code=255)  # runc's exit status for a failed exec
    finally:
        proc.kill()
        proc.wait()
        _release(gate)  # the hook, orphaned by the killed create, reads EOF and exits
    c.delete(force=True)
    assert c.leftovers() == []


def _release(fifo):
    """Open and close the FIFO's write end: its reader, if any, gets EOF."""
    try:
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    except OSError:  # ENXIO: nobody reads it
        pass
