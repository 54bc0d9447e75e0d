"""Fixtures for running pyrunc under real managers (containerd, podman, Docker).

Every test takes `peer_runtime`, parametrised over pyrunc and runc: the same test against runc is the
control, so a failure that only shows for pyrunc is pyrunc's. `image_archive` is a docker-archive of a
busybox-static rootfs built locally with pyctr (no registry is reachable), loadable by `ctr image
import`, `podman load` and `docker load`.

Tests that need what issue 5 brings (`exec`, terminals) are strict xfails while the pyrunc under test
cannot do `exec`: detected, not hard-coded, so they turn green by themselves once it can.
"""
import os
import shutil
import subprocess

import pytest

from integration.helpers.bundle import make_rootfs, write_rootfs_tar
from integration.helpers.runtime import DEFAULT_RUNTIME, REPO, describe, execute

PYCTR = os.path.join(REPO, ".venv", "bin", "pyctr")
RUNC = "/usr/sbin/runc"
IMAGE = "localhost/pyrunc-peers/busybox:latest"
RUNTIMES = {"pyrunc": DEFAULT_RUNTIME, "runc": RUNC}


class PeerRuntime:
    def __init__(self, name, path):
        self.name, self.path = name, path

    def __repr__(self):
        return self.name

    @property
    def has_exec(self):
        """Whether this runtime has `exec` (and, with it, terminals): pyrunc gains them in issue 5."""
        if self.name == "runc":
            return True
        cp = subprocess.run([self.path, "exec", "--help"], capture_output=True, timeout=60)
        return cp.returncode == 0

    def needs_exec(self, request):
        """Marks the running test a strict xfail when the runtime lacks exec/terminals."""
        if not self.has_exec:
            request.node.add_marker(pytest.mark.xfail(
                reason=f"{self.path} has no `exec`/terminal support yet (issue 5)", strict=True))


def need(tool):
    """The path of a peer program; a missing one FAILS the test (CI installs them with apt-get)."""
    for d in ("/usr/sbin", "/usr/bin", "/sbin", "/bin"):
        path = os.path.join(d, tool)
        if os.access(path, os.X_OK):
            return path
    pytest.fail(f"{tool} is not installed (scripts/setup installs the peers: containerd, podman, docker.io)",
                pytrace=False)


@pytest.fixture(params=sorted(RUNTIMES), ids=sorted(RUNTIMES))
def peer_runtime(request):
    path = RUNTIMES[request.param]
    if not os.access(path, os.X_OK):
        pytest.fail(f"runtime {path} missing (pyrunc: run scripts/setup; runc: apt-get install runc)",
                    pytrace=False)
    return PeerRuntime(request.param, path)


@pytest.fixture(scope="session")
def image_archive(tmp_path_factory):
    """docker-archive (tar) of IMAGE: busybox-static rootfs, CMD /bin/sh; built by pyctr import + save."""
    d = tmp_path_factory.mktemp("peer-image")
    rootfs = make_rootfs(str(d / "rootfs"))
    with open(os.path.join(rootfs, "etc", "motd"), "w") as f:
        f.write("made for pyrunc peer tests\n")
    rootfs_tar = str(d / "rootfs.tar")
    write_rootfs_tar(rootfs, rootfs_tar)
    store = str(d / "pyctr")
    archive = str(d / "busybox.tar")
    for argv in (["import", "-c", 'CMD ["/bin/sh"]', rootfs_tar, IMAGE], ["save", "-o", archive, IMAGE]):
        cp = execute([PYCTR, "--root", store, *argv], timeout=300)
        assert cp.returncode == 0, describe(cp)
    shutil.rmtree(store, ignore_errors=True)
    shutil.rmtree(rootfs, ignore_errors=True)
    return archive


def kill_pidfile(pidfile, sig=15, timeout=30):
    """Signal the daemon whose pid is in pidfile and wait until it is gone."""
    try:
        with open(pidfile) as f:
            pid = int(f.read().strip())
    except (OSError, ValueError):
        return
    stop_pid(pid, sig, timeout)


class Daemon:
    """A daemon started by the tests with private state under self.base: its log, the wait until
    it answers, and a stop that reports (and removes) whatever it left behind."""

    name = ""  # also the log's file name, <base>/<name>.log

    def start(self, argv, ready, timeout, interval):
        self.log = open(os.path.join(self.base, f"{self.name}.log"), "wb")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log,
                                     start_new_session=True)
        import time
        deadline = time.monotonic() + timeout
        while not ready():
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited {self.proc.returncode}:\n{self.logs()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name} did not come up:\n{self.logs()}")
            time.sleep(interval)

    def logs(self):
        with open(os.path.join(self.base, f"{self.name}.log"), errors="replace") as f:
            return f.read()[-6000:]

    def stop_daemon(self, cgroup_name, timeout=30):
        """Processes naming our private dir (shims, containers), mounts under it and cgroups under
        cgroup_name are what the daemon left: all removed, and returned as problems."""
        stop_pid(self.proc.pid, 15, timeout)
        self.proc.wait()
        self.log.close()
        problems = []
        for pid in processes_with(self.base):
            problems.append(f"process {pid}")
            stop_pid(pid, 9, 5)
        problems += [f"mount {m}" for m in unmount_under(self.base)]
        problems += [f"cgroup {c}" for c in remove_cgroups(cgroup_name)]
        shutil.rmtree(self.base, ignore_errors=True)
        remove_empty_run_dirs()
        return problems


def remove_empty_run_dirs():
    """containerd 1.6 keeps shim sockets and ctr's fifos under fixed paths whatever its config says:
    remove them once empty (rmdir: anything still in them is some live daemon's)."""
    for d in ("/run/containerd/s", "/run/containerd/fifo", "/run/containerd/runc", "/run/containerd"):
        try:
            os.rmdir(d)
        except OSError:
            pass


def stop_pid(pid, sig=15, timeout=30):
    import time
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not os.path.exists(f"/proc/{pid}") or _is_zombie(pid):
            return
        time.sleep(0.1)
    try:
        os.kill(pid, 9)
    except ProcessLookupError:
        pass


def _is_zombie(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def unmount_under(*prefixes):
    """Lazily unmount everything below the given directories (deepest first); returns what was found."""
    from integration.helpers import mountinfo
    found = []
    for m in reversed(mountinfo.read()):
        if any(m.mount_point == p or m.mount_point.startswith(p.rstrip("/") + "/") for p in prefixes):
            found.append(m.mount_point)
            subprocess.run(["umount", "-l", m.mount_point], capture_output=True)
    return found


def remove_cgroups(name, expected=()):
    """Remove /sys/fs/cgroup/*/<name> trees (killing anything left inside), deepest first; returns the
    container cgroups found below <name> (the parent itself and `expected` children are the manager's own,
    which it never removes)."""
    from integration.helpers import mountinfo
    from integration.helpers.runtime import kill_cgroup_tree
    left = []
    for mp, _, _ in mountinfo.cgroup_hierarchies():
        path = os.path.join(mp, name.strip("/"))
        if os.path.isdir(path):
            left += [os.path.join(path, e) for e in os.listdir(path)
                     if e not in expected and os.path.isdir(os.path.join(path, e))]
            kill_cgroup_tree(path)
    return left


def processes_with(text):
    """pids whose command line mentions text (our private temp dirs), to find leaked shims/containers."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmd:
            pids.append(int(entry))
    return pids
