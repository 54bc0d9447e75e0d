"""pyrunc under podman (Debian's 4.3 with conmon): `podman --runtime <runtime>`, cgroupfs manager, file
events, no network, private --root/--runroot/--tmpdir; the image comes in with `podman load`.

podman passes no --root to the OCI runtime, so containers live in the runtime's default root
(/run/pyrunc, /run/runc); the teardown force-deletes our ids there.
"""
import fcntl
import json
import os
import pty
import select
import shutil
import subprocess
import tempfile
import termios
import time

import pytest

from integration.helpers.runtime import describe, execute, wait_for
from integration.peers.conftest import (IMAGE, need, processes_with, remove_cgroups, stop_pid,
                                        unmount_under)

CGROUP_PARENT = f"pyrunc-peers-podman-{os.getpid()}"  # unique: concurrent runs must not share it

def _limits():
    """podman raises RLIMIT_NOFILE/NPROC above this machine's hard limits by default, which needs
    CAP_SYS_RESOURCE (the sessions here lack it; runc fails the same way): ask for modest ones, below
    any hard limit a CI machine has."""
    import resource
    flags = []
    for name, res, want in (("nofile", resource.RLIMIT_NOFILE, 1024), ("nproc", resource.RLIMIT_NPROC, 4096)):
        hard = resource.getrlimit(res)[1]
        value = want if hard < 0 else min(want, hard)
        flags += ["--ulimit", f"{name}={value}:{value}"]
    return flags


RUN_FLAGS = ("--network", "none", "--cgroup-parent", f"/{CGROUP_PARENT}", *_limits())
DEFAULT_ROOTS = {"pyrunc": "/run/pyrunc", "runc": "/run/runc"}


class Podman:
    def __init__(self, base, rt):
        self.base, self.rt = base, rt
        self.bin = need("podman")
        need("conmon")

    def argv(self, *args):
        return [self.bin, "--root", f"{self.base}/root", "--runroot", f"{self.base}/rr",
                "--tmpdir", f"{self.base}/tmp", "--runtime", self.rt.path, "--cgroup-manager", "cgroupfs",
                "--events-backend", "file", "--storage-driver", "vfs", *args]

    def __call__(self, *args, check=True, timeout=120):
        cp = execute(self.argv(*args), timeout=timeout)
        if check and cp.returncode != 0:
            raise AssertionError(describe(cp))
        return cp

    def run(self, *args, check=False):
        return self("run", *RUN_FLAGS, *args, check=check)

    def inspect(self, name):
        return json.loads(self("container", "inspect", name).stdout)[0]

    def cleanup(self):
        problems = []
        cp = self("ps", "-aq", "--no-trunc", check=False)
        ids = cp.stdout.split()
        if ids:  # a failed test's containers: removing them is the cleanup, what they leave is checked below
            self("rm", "-f", "-t", "0", *ids, check=False)
        self("rmi", "-af", check=False)
        # podman records full ids; anything of ours still in the runtime's default root is a leak
        root = DEFAULT_ROOTS[self.rt.name]
        for id in self.seen:
            if os.path.exists(os.path.join(root, id)):
                problems.append(f"state {root}/{id}")
                execute([self.rt.path, "--root", root, "delete", "--force", id])
                shutil.rmtree(os.path.join(root, id), ignore_errors=True)
        for pid in processes_with(self.base):
            problems.append(f"process {pid}")
            stop_pid(pid, 9, 5)
        problems += [f"mount {m}" for m in unmount_under(self.base)]
        problems += [f"cgroup {c}" for c in remove_cgroups(CGROUP_PARENT, expected=("conmon",))]
        return problems

    seen = ()


@pytest.fixture(scope="module")
def podman_base(image_archive):
    # podman refuses a runroot path longer than 50 characters: a short dir under /tmp
    base = tempfile.mkdtemp(prefix="pyrunc-pod-")
    made_roots = [root for root in DEFAULT_ROOTS.values() if not os.path.exists(root)]
    yield base
    unmount_under(base)
    shutil.rmtree(base, ignore_errors=True)
    # podman passes no --root: the runtimes made their default roots. Remove the ones that were not
    # there before, once conmon's exit commands (`podman container cleanup`, run in the background
    # after a container exits) have deleted what they delete; a root still holding state after
    # that is a leak.
    leaks = []
    for root in made_roots:
        deadline = time.monotonic() + 15
        while os.path.isdir(root) and os.listdir(root) and time.monotonic() < deadline:
            time.sleep(0.1)
        try:
            os.rmdir(root)
        except FileNotFoundError:
            pass
        except OSError:
            leaks.append(f"{root}: {sorted(os.listdir(root))}")
    assert not leaks, f"runtime state left in the default roots: {leaks}"


def loaded(p, image_archive):
    """A fixture's body: p with the image loaded; afterwards what it left is removed and fails the test."""
    p.seen = []
    p("load", "-i", image_archive)
    yield p
    problems = p.cleanup()
    if problems:
        pytest.fail("podman leftovers (removed): " + ", ".join(problems), pytrace=False)


@pytest.fixture
def podman(podman_base, image_archive, peer_runtime):
    yield from loaded(Podman(podman_base, peer_runtime), image_archive)


def _name(podman):
    name = f"{podman.rt.name}-{os.getpid()}-{len(podman.seen)}"
    return name


def _track(podman, name):
    cp = podman("container", "inspect", "--format", "{{.Id}}", name, check=False)
    if cp.returncode == 0:
        podman.seen.append(cp.stdout.strip())


def test_run_rm(podman):
    cp = podman.run("--rm", IMAGE, "sh", "-c", "cat /etc/motd; echo pid $$; exit 3")
    assert cp.returncode == 3, describe(cp)
    assert cp.stdout.splitlines() == ["made for pyrunc peer tests", "pid 1"], describe(cp)
    assert podman("ps", "-aq").stdout.strip() == ""


def test_detached_logs_pause_stop_rm(podman):
    name = _name(podman)
    cp = podman.run("-d", "--name", name, IMAGE, "sh", "-c",
                    "trap 'echo got-term; exit 0' TERM; echo ready; while :; do sleep 0.2; done")
    _track(podman, name)
    assert cp.returncode == 0, describe(cp)
    wait_for(lambda: "ready" in podman("logs", name).stdout, what="ready in podman logs")
    info = podman.inspect(name)
    assert info["State"]["Status"] == "running", info["State"]
    pid = info["State"]["Pid"]
    assert os.path.exists(f"/proc/{pid}")

    podman("pause", name)
    assert podman.inspect(name)["State"]["Status"] == "paused"
    podman("unpause", name)
    assert podman.inspect(name)["State"]["Status"] == "running"

    podman("stop", "-t", "20", name)
    state = podman.inspect(name)["State"]
    assert state["Status"] == "exited" and state["ExitCode"] == 0, state
    assert "got-term" in podman("logs", name).stdout
    podman("rm", name)
    assert podman("ps", "-aq").stdout.strip() == ""


def test_exec(podman, request):
    podman.rt.needs_exec(request)
    name = _name(podman)
    cp = podman.run("-d", "--name", name, IMAGE, "sh", "-c", "echo x > /tmp/mark; exec sleep 1000")
    _track(podman, name)
    assert cp.returncode == 0, describe(cp)
    wait_for(lambda: podman.inspect(name)["State"]["Status"] == "running", what="running")
    cp = podman("exec", name, "sh", "-c", "cat /tmp/mark /etc/motd; exit 4", check=False)
    assert cp.returncode == 4 and cp.stdout == "x\nmade for pyrunc peer tests\n", describe(cp)
    podman("rm", "-f", "-t", "0", name)


def _run_in_pty(argv, script, timeout=60):
    """Run argv on a fresh pty as its controlling terminal; type script; return (exit code, output)."""
    master, slave = pty.openpty()

    def ctty():
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, start_new_session=True,
                            preexec_fn=ctty)
    os.close(slave)
    out = b""
    sent = False
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            r, _, _ = select.select([master], [], [], 0.2)
            if r:
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # EIO: every slave fd is closed
                    break
                if not chunk:
                    break
                out += chunk
            if not sent and (b"# " in out or time.monotonic() > deadline - timeout + 3):
                os.write(master, script)
                sent = True
            if proc.poll() is not None and not r:
                break
        else:
            raise AssertionError(f"timed out: {argv}\n{out!r}")
        return proc.wait(timeout=30), out.decode(errors="replace")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)


def test_run_it_terminal(podman, request):
    podman.rt.needs_exec(request)
    name = _name(podman)
    code, out = _run_in_pty(podman.argv("run", "-it", "--rm", "--name", name, *RUN_FLAGS, IMAGE, "sh"),
                            b"tty; echo $((6*7)); exit 3\n")
    assert code == 3, out
    assert "/dev/pts/0" in out and "42" in out, out


def test_run_privileged(podman):
    # podman --privileged hands the runtime every host device, with the file type bits in fileMode
    # (8630 = S_IFCHR|0666; the runtime-spec schema allows at most 512): runc masks them off.
    cp = podman.run("--rm", "--privileged", IMAGE, "sh", "-c", "stat -c '%A %t:%T' /dev/null /dev/kmsg; id -u")
    assert cp.returncode == 0, describe(cp)
    assert cp.stdout.splitlines() == ["crw-rw-rw- 1:3", "crw-r--r-- 1:b", "0"], describe(cp)
