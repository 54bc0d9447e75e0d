"""pyrunc under containerd (Debian's 1.6): `ctr run --runc-binary <runtime>` through the stock
io.containerd.runc.v2 shim, which drives the runtime with go-runc's argv (--log JSON, --pid-file, ...).

One private containerd per module (own root, state, socket and config under a short temp dir), stopped
and removed at the end even when a test fails.
"""
import json
import os
import shutil
import tempfile

import pytest

from integration.helpers.runtime import describe, execute, wait_for
from integration.peers.conftest import IMAGE, Daemon, need, processes_with

NAMESPACE = "pyrunc-peers"


class Containerd(Daemon):
    name = "containerd"

    def __init__(self, base):
        self.base = base
        self.address = os.path.join(base, "c.sock")
        self.ctr_bin = need("ctr")
        config = os.path.join(base, "config.toml")
        with open(config, "w") as f:
            f.write(f"""version = 2
root = "{base}/root"
state = "{base}/state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.btrfs",
                    "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
                    "io.containerd.snapshotter.v1.aufs", "io.containerd.tracing.processor.v1.otlp"]
[grpc]
  address = "{self.address}"
[ttrpc]
  address = "{self.address}.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
""")
        self.start([need("containerd"), "--config", config], ready=self._answers, timeout=60, interval=0.1)

    def _answers(self):
        return os.path.exists(self.address) and execute(
            [self.ctr_bin, "--address", self.address, "version"]).returncode == 0

    def ctr(self, *args, check=True, timeout=120):
        cp = execute([self.ctr_bin, "--address", self.address, "-n", NAMESPACE, *args], timeout=timeout)
        if check and cp.returncode != 0:
            raise AssertionError(describe(cp) + "\n--- containerd log ---\n" + self.logs())
        return cp

    def stop(self):
        problems = []
        cp = self.ctr("task", "ls", "-q", check=False)
        for id in cp.stdout.split():
            problems.append(f"task {id}")
            self.ctr("task", "kill", "-s", "SIGKILL", id, check=False)
            self.ctr("task", "delete", "-f", id, check=False)
        for id in self.ctr("container", "ls", "-q", check=False).stdout.split():
            problems.append(f"container {id}")
            self.ctr("container", "delete", id, check=False)
        # shims name our address in their argv: stop_daemon() finds any that outlived their task
        return problems + self.stop_daemon(NAMESPACE)


@pytest.fixture(scope="module")
def containerd(image_archive):
    base = tempfile.mkdtemp(prefix="pyrunc-ctrd-")
    d = None
    try:
        d = Containerd(base)
        d.ctr("image", "import", "--no-unpack", image_archive)
        d.ctr("image", "ls")
        yield d
    finally:
        problems = d.stop() if d else []
        shutil.rmtree(base, ignore_errors=True)
        if problems:
            pytest.fail("containerd leftovers (removed): " + ", ".join(problems), pytrace=False)


_ids = iter(range(1, 10 ** 6))


def new_id(rt):
    return f"{rt.name}-{os.getpid()}-{next(_ids)}"


def run(containerd, rt, *args, detach=False, id=None):
    # --runc-root: the stock shim's default (/run/containerd/runc/<namespace>) would outlive the test
    return containerd.ctr("run", "--runc-binary", rt.path, "--runc-root", os.path.join(containerd.base, "runc"),
                          *(["-d"] if detach else ["--rm"]),
                          "--snapshotter", "overlayfs", IMAGE, id or new_id(rt), *args, check=False)


def test_run_rm_output(containerd, peer_runtime):
    cp = run(containerd, peer_runtime, "sh", "-c", "echo hello from $(hostname); cat /etc/motd; echo $$")
    assert cp.returncode == 0, describe(cp) + containerd.logs()
    lines = cp.stdout.splitlines()
    assert lines[0].startswith("hello from ") and lines[1:] == ["made for pyrunc peer tests", "1"], describe(cp)
    assert containerd.ctr("container", "ls", "-q").stdout.strip() == ""


def test_exit_code_comes_back(containerd, peer_runtime):
    cp = run(containerd, peer_runtime, "sh", "-c", "echo bye >&2; exit 42")
    assert cp.returncode == 42, describe(cp)
    assert "bye" in cp.stderr


def _task_status(containerd, id):
    for line in containerd.ctr("task", "ls").stdout.splitlines()[1:]:
        fields = line.split()
        if fields and fields[0] == id:
            return fields[2]
    return None


def test_detached_task_lifecycle(containerd, peer_runtime, request):
    rt = peer_runtime
    id = new_id(rt)
    cp = run(containerd, rt, "sh", "-c",
              "trap 'exit 3' TERM; echo started > /tmp/mark; while :; do sleep 0.2; done", detach=True, id=id)
    assert cp.returncode == 0, describe(cp)
    try:
        wait_for(lambda: _task_status(containerd, id) == "RUNNING", what=f"{id} RUNNING")
        pid = int(containerd.ctr("task", "ls").stdout.split(id, 1)[1].split()[0])
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            assert f.read().split(b"\0")[:2] == [b"sh", b"-c"]

        containerd.ctr("task", "pause", id)
        assert _task_status(containerd, id) == "PAUSED"
        with open(f"/proc/{pid}/status") as f:
            state = [l for l in f if l.startswith("State:")][0]
        assert "T" in state or "D" in state or "S" in state
        containerd.ctr("task", "resume", id)
        assert _task_status(containerd, id) == "RUNNING"

        ps = containerd.ctr("task", "ps", id).stdout
        assert str(pid) in ps, ps

        metrics = containerd.ctr("task", "metrics", "--format", "json", id).stdout
        assert "memory" in metrics.lower() or "pids" in metrics.lower(), metrics
        assert json.loads(metrics)

        if rt.has_exec:
            cp = containerd.ctr("task", "exec", "--exec-id", "e1", id, "cat", "/tmp/mark", check=False)
            assert cp.returncode == 0 and cp.stdout == "started\n", describe(cp)
            cp = containerd.ctr("task", "exec", "--exec-id", "e2", id, "sh", "-c", "exit 7", check=False)
            assert cp.returncode == 7, describe(cp)

        containerd.ctr("task", "kill", "-s", "SIGTERM", id)
        wait_for(lambda: _task_status(containerd, id) == "STOPPED", what=f"{id} STOPPED")
        assert not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split()[2] == "Z"
        containerd.ctr("task", "delete", id)
        containerd.ctr("container", "delete", id)
        assert id not in containerd.ctr("container", "ls", "-q").stdout
        if rt.name == "pyrunc":
            # the shim's --root for the runtime: nothing left of the container there
            left = [p for p in processes_with(id)]
            assert not left, left
    finally:
        containerd.ctr("task", "kill", "-s", "SIGKILL", id, check=False)
        containerd.ctr("task", "delete", "-f", id, check=False)
        containerd.ctr("container", "delete", id, check=False)


def test_task_exec(containerd, peer_runtime, request):
    peer_runtime.needs_exec(request)
    rt = peer_runtime
    id = new_id(rt)
    cp = run(containerd, rt, "sleep", "1000", detach=True, id=id)
    assert cp.returncode == 0, describe(cp)
    try:
        wait_for(lambda: _task_status(containerd, id) == "RUNNING", what=f"{id} RUNNING")
        cp = containerd.ctr("task", "exec", "--exec-id", "e1", id, "sh", "-c", "cat /etc/motd; exit 5",
                            check=False)
        assert cp.returncode == 5 and cp.stdout == "made for pyrunc peer tests\n", describe(cp)
    finally:
        containerd.ctr("task", "kill", "-s", "SIGKILL", id, check=False)
        containerd.ctr("task", "delete", "-f", id, check=False)
        containerd.ctr("container", "delete", id, check=False)


def test_short_lived_tasks_start(containerd, peer_runtime):
    """`true` exits at once after start releases it, and the shim (a subreaper) reaps it at once: start
    must still report success (pyrunc once opened its pidfd after the fifo and lost that race)."""
    for _ in range(15):
        cp = run(containerd, peer_runtime, "true")
        assert cp.returncode == 0, describe(cp)
