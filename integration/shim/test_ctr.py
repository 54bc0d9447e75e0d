"""containerd drives the shim: `ctr run --runtime io.containerd.pyrunc.v2` with pyrunc and with
runc (runc options BinaryName, via --runtime-config-path) as the runtime under the shim."""
import os
import time

from integration.shim.conftest import IMAGE

RT = "io.containerd.pyrunc.v2"


def _run(c, binary, cid, *cmd, detach=False, extra=()):
    args = ["run", "--runtime", RT, "--runtime-config-path", c.runtime_config(binary)]
    args += ["-d"] if detach else ["--rm"]
    return c.ctr(*args, *extra, IMAGE, cid, *cmd, check=False)


def _wait_status(c, cid, want, timeout=60):
    deadline = time.monotonic() + timeout
    while True:
        out = c.ctr("tasks", "ls", check=False).stdout
        for line in out.splitlines()[1:]:
            f = line.split()
            if f and f[0] == cid and f[2] == want:
                return
        if time.monotonic() > deadline:
            raise AssertionError(f"task {cid} never reached {want}:\n{out}")
        time.sleep(0.2)


def _cleanup(c, cid):
    c.ctr("tasks", "kill", "-s", "KILL", cid, check=False)
    deadline = time.monotonic() + 30
    while c.ctr("tasks", "delete", cid, check=False).returncode != 0 and time.monotonic() < deadline:
        if cid not in c.ctr("tasks", "ls", "-q", check=False).stdout.split():
            break
        time.sleep(0.3)
    c.ctr("containers", "delete", cid, check=False)


def test_run_output_and_exit_code(containerd, binary):
    cp = _run(containerd, binary, "run1", "sh", "-c", "echo out; echo err >&2; exit 7")
    assert cp.returncode == 7, cp
    assert cp.stdout.splitlines() == ["out"]
    assert cp.stderr.strip() == "err"


def test_stdin_reaches_container(containerd, binary):
    args = ["run", "--rm", "--runtime", RT, "--runtime-config-path", containerd.runtime_config(binary),
            IMAGE, "stdin1", "sh", "-c", "wc -l; echo done"]
    cp = containerd.ctr(*args, input="a\nb\nc\n", check=False)
    assert cp.returncode == 0, cp
    assert cp.stdout.split() == ["3", "done"]


def test_kill_and_delete(containerd, binary):
    cid = "kill1-" + os.path.basename(binary)
    try:
        assert _run(containerd, binary, cid, "sleep", "1000", detach=True).returncode == 0
        _wait_status(containerd, cid, "RUNNING")
        containerd.ctr("tasks", "kill", "-s", "KILL", cid)  # pid 1 ignores an unhandled TERM
        _wait_status(containerd, cid, "STOPPED")
        containerd.ctr("tasks", "delete", cid)
        assert cid not in containerd.ctr("tasks", "ls", "-q").stdout.split()
        containerd.ctr("containers", "delete", cid)
    finally:
        _cleanup(containerd, cid)


def test_exec(containerd, binary):
    cid = "exec1-" + os.path.basename(binary)
    try:
        assert _run(containerd, binary, cid, "sleep", "1000", detach=True).returncode == 0
        _wait_status(containerd, cid, "RUNNING")
        cp = containerd.ctr("tasks", "exec", "--exec-id", "e1", cid, "sh", "-c", "echo from-exec; exit 5",
                            check=False)
        assert cp.returncode == 5, cp
        assert cp.stdout.strip() == "from-exec"
    finally:
        _cleanup(containerd, cid)


def test_pause_resume(containerd, binary):
    cid = "pause1-" + os.path.basename(binary)
    try:
        assert _run(containerd, binary, cid, "sleep", "1000", detach=True).returncode == 0
        _wait_status(containerd, cid, "RUNNING")
        containerd.ctr("tasks", "pause", cid)
        _wait_status(containerd, cid, "PAUSED")
        containerd.ctr("tasks", "resume", cid)
        _wait_status(containerd, cid, "RUNNING")
    finally:
        _cleanup(containerd, cid)


def test_ps_lists_the_container_processes(containerd, binary):
    cid = "ps1-" + os.path.basename(binary)
    try:
        assert _run(containerd, binary, cid, "sleep", "1000", detach=True).returncode == 0
        _wait_status(containerd, cid, "RUNNING")
        out = containerd.ctr("tasks", "ps", cid).stdout.split()
        pids = [int(x) for x in out if x.isdigit()]
        assert len(pids) == 1
        with open(f"/proc/{pids[0]}/cmdline", "rb") as f:
            assert f.read().split(b"\0")[:2] == [b"sleep", b"1000"]
    finally:
        _cleanup(containerd, cid)
