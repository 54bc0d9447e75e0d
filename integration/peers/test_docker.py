"""pyrunc under Docker (Debian's docker.io 20.10): a private dockerd (own --data-root, --exec-root,
unix socket, pidfile, no iptables/bridge/forwarding) with `--add-runtime pyrunc=<path>`, and the
containerd it manages under its exec-root; containers run with `--runtime pyrunc` (or the default runc).
The image comes in with `docker load`.
"""
import contextlib
import json
import os
import shutil
import tempfile

import pytest

from integration.helpers.runtime import describe, execute, wait_for
from integration.peers.conftest import IMAGE, RUNTIMES, Daemon, need

CGROUP_PARENT = f"pyrunc-peers-docker-{os.getpid()}"  # unique: concurrent runs must not share it


class Dockerd(Daemon):
    name = "dockerd"

    def __init__(self, base, bridge="none"):
        """bridge: a pre-made bridge for the default network (no iptables: ports through docker-proxy)."""
        self.base = base
        self.exec_root = os.path.join(base, "x")  # containerd's sockets live below: keep it short
        self.sock = os.path.join(base, "d.sock")
        self.pidfile = os.path.join(base, "d.pid")
        self.client = need("docker")
        argv = [need("dockerd"), "--data-root", os.path.join(base, "data"), "--exec-root", self.exec_root,
                "-H", f"unix://{self.sock}", "--pidfile", self.pidfile, "--iptables=false",
                "--ip6tables=false", f"--bridge={bridge}", "--ip-forward=false", "--ip-masq=false",
                f"--userland-proxy={'false' if bridge == 'none' else 'true'}", "--storage-driver", "overlay2", "--cgroup-parent", f"/{CGROUP_PARENT}",
                "--exec-opt", "native.cgroupdriver=cgroupfs", "--add-runtime", f"pyrunc={RUNTIMES['pyrunc']}",
                "--default-ulimit", "nofile=1024:1024", "--no-new-privileges=false",
                "--log-level", "info"]
        self.start(argv, ready=lambda: os.path.exists(self.sock) and self("version", check=False).returncode == 0,
                   timeout=90, interval=0.2)

    def __call__(self, *args, check=True, timeout=120):
        cp = execute([self.client, "-H", f"unix://{self.sock}", *args], timeout=timeout,
                     env=dict(os.environ, DOCKER_CONFIG=os.path.join(self.base, "client")))
        if check and cp.returncode != 0:
            raise AssertionError(describe(cp) + "\n--- dockerd log ---\n" + self.logs())
        return cp

    def inspect(self, name):
        return json.loads(self("inspect", name).stdout)[0]

    def stop(self):
        problems = []
        if self.proc.poll() is None:
            ids = self("ps", "-aq", check=False).stdout.split()
            if ids:
                self("rm", "-f", *ids, check=False)
        # dockerd keeps a bind of the host's netns (--network host) under its exec-root for its life
        host_netns = os.path.join(self.exec_root, "netns", "default")
        if os.path.exists(host_netns):
            execute(["umount", host_netns])
        # the containerd dockerd manages and its shims name our dirs: stop_daemon() finds stragglers
        return problems + self.stop_daemon(CGROUP_PARENT, timeout=60)


@contextlib.contextmanager
def loaded_dockerd(archive, prefix, **kwargs):
    """A private Dockerd (kwargs: its own) with archive loaded; stopped and its base removed at
    the end, failing the test run if it left anything."""
    base = tempfile.mkdtemp(prefix=prefix)
    d = None
    try:
        d = Dockerd(base, **kwargs)
        d("load", "-i", archive)
        yield d
    finally:
        problems = d.stop() if d else []
        shutil.rmtree(base, ignore_errors=True)
        if problems:
            pytest.fail("dockerd leftovers (removed): " + ", ".join(problems), pytrace=False)


@pytest.fixture(scope="module")
def dockerd(image_archive):
    with loaded_dockerd(image_archive, "pyrunc-dkr-") as d:
        yield d


_n = iter(range(1, 10 ** 6))


@pytest.fixture
def docker(dockerd, peer_runtime):
    """dockerd with `run` bound to the runtime under test; removes the test's containers after."""
    class Docker:
        rt = peer_runtime

        def __call__(self, *args, **kw):
            return dockerd(*args, **kw)

        def run(self, *args, check=False):
            return dockerd("run", "--runtime", peer_runtime.name, "--network", "none", *args, check=check)

        def name(self):
            return f"{peer_runtime.name}-{os.getpid()}-{next(_n)}"

        inspect = staticmethod(dockerd.inspect)
        logs = staticmethod(dockerd.logs)
    yield Docker()
    ids = dockerd("ps", "-aq", check=False).stdout.split()
    if ids:
        dockerd("rm", "-f", *ids, check=False)


def test_run_rm(docker):
    cp = docker.run("--rm", IMAGE, "sh", "-c", "cat /etc/motd; echo pid $$; exit 3")
    assert cp.returncode == 3, describe(cp) + docker.logs()
    assert cp.stdout.splitlines() == ["made for pyrunc peer tests", "pid 1"], describe(cp)
    assert docker("ps", "-aq").stdout.strip() == ""


def test_missing_command_is_127(docker):
    """dockerd maps the runtime's "executable file not found" wording to exit 127 (126: not executable)."""
    cp = docker.run("--rm", IMAGE, "/no/such/binary")
    assert cp.returncode == 127, describe(cp)
    cp = docker.run("--rm", IMAGE, "/etc/motd")
    assert cp.returncode == 126, describe(cp)


def test_detached_logs_pause_stop_rm(docker):
    name = docker.name()
    cp = docker.run("-d", "--name", name, IMAGE, "sh", "-c",
                    "trap 'echo got-term; exit 0' TERM; echo ready; while :; do sleep 0.2; done")
    assert cp.returncode == 0, describe(cp) + docker.logs()
    wait_for(lambda: "ready" in docker("logs", name).stdout, what="ready in docker logs")
    state = docker.inspect(name)["State"]
    assert state["Status"] == "running", state
    assert os.path.exists(f"/proc/{state['Pid']}")

    docker("pause", name)
    assert docker.inspect(name)["State"]["Status"] == "paused"
    docker("unpause", name)
    assert docker.inspect(name)["State"]["Status"] == "running"

    docker("stop", "-t", "20", name)
    state = docker.inspect(name)["State"]
    assert state["Status"] == "exited" and state["ExitCode"] == 0, state
    assert "got-term" in docker("logs", name).stdout
    docker("rm", name)
    assert docker("ps", "-aq").stdout.strip() == ""


def test_exec(docker, request):
    docker.rt.needs_exec(request)
    name = docker.name()
    cp = docker.run("-d", "--name", name, IMAGE, "sh", "-c", "echo x > /tmp/mark; exec sleep 1000")
    assert cp.returncode == 0, describe(cp)
    wait_for(lambda: docker.inspect(name)["State"]["Status"] == "running", what="running")
    cp = docker("exec", name, "sh", "-c", "cat /tmp/mark /etc/motd; exit 4", check=False)
    assert cp.returncode == 4 and cp.stdout == "x\nmade for pyrunc peer tests\n", describe(cp)
    docker("rm", "-f", name)
