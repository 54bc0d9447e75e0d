"""Shared fixtures for the runtime integration tests (runtime-agnostic: pyrunc, runc, crun).

Run as root:   .venv/bin/python3 -m pytest integration
Against runc:  PYRUNC_TEST_RUNTIME=/usr/sbin/runc .venv/bin/python3 -m pytest integration

Environment:
  PYRUNC_TEST_RUNTIME    runtime binary (default <repo>/.venv/bin/pyrunc)
  PYRUNC_TEST_IS_PYRUNC  1/0: force whether pyrunc_only tests run (default: guessed from the binary)
  PYRUNC_TEST_TIMEOUT    seconds allowed per runtime command (default 60)

Fixtures: `runtime` (a helpers.runtime.Runtime with a private --root and leftover checks at teardown),
`runtime_root`, `rootfs_template`, `netns`, `ns_holder`, `host_mount`.
Markers: `pyrunc_only` (skipped unless the runtime is pyrunc), `runc_lacks(reason)` (strict xfail
when the runtime is runc: behaviour the issue demands that runc 1.1.5 lacks).
"""
import itertools
import os
import shutil
import subprocess
import sys

import pytest

_HERE = os.path.dirname(os.path.abspath(__file__))
_REPO = os.path.dirname(_HERE)
for _p in (os.path.join(_REPO, "runtime"), _REPO):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from integration.helpers import mountinfo  # noqa: E402
from integration.helpers.bundle import make_rootfs  # noqa: E402
from integration.helpers.runtime import (  # noqa: E402
    Runtime, execute, is_pyrunc, remove_cgroup_parent, runtime_path)

SESSION_DIR = f"/run/pyrunc-test-{os.getpid()}"
_root_counter = itertools.count(1)


def pytest_configure(config):
    config.addinivalue_line("markers", "pyrunc_only: checks pyrunc-specific behaviour (wording, "
                                       "--version/features/spec details); skipped for other runtimes")
    config.addinivalue_line("markers", "runc_lacks(reason): demanded behaviour that runc 1.1.5 does not "
                                       "have; expected to fail (strict xfail) when the runtime is runc")


def pytest_collection_modifyitems(config, items):
    pyrunc = is_pyrunc()
    runc = os.path.basename(runtime_path()) == "runc"
    skip = pytest.mark.skip(reason=f"pyrunc-only behaviour; runtime under test is {runtime_path()}")
    for item in items:
        if "pyrunc_only" in item.keywords and not pyrunc:
            item.add_marker(skip)
        marker = item.get_closest_marker("runc_lacks")
        if marker and runc:
            item.add_marker(pytest.mark.xfail(reason=marker.args[0] if marker.args else "runc lacks it",
                                              strict=True))


def pytest_report_header(config):
    return f"runtime under test: {runtime_path()} (pyrunc: {is_pyrunc()})"


def _podman_cgroup_parents():
    return {path for mp, _, _ in mountinfo.cgroup_hierarchies()
            for path in [os.path.join(mp, "libpod_parent")] if os.path.isdir(path)}


@pytest.fixture(scope="session", autouse=True)
def podman_cgroup_parent_removed():
    """podman (peers and pyctr interop tests) makes a libpod_parent cgroup in every hierarchy for its
    own helpers and leaves it: remove the empty trees this session created, never a pre-existing one."""
    before = _podman_cgroup_parents()
    yield
    for path in sorted(_podman_cgroup_parents() - before):
        for dirpath, _, _ in sorted(os.walk(path), key=lambda entry: -entry[0].count("/")):
            try:
                os.rmdir(dirpath)
            except OSError:
                pass  # not empty: something still runs there, which the owning test reports


@pytest.fixture(scope="session")
def session_dir():
    if os.geteuid() != 0:
        pytest.fail("the integration tests need root (namespaces, mounts, cgroups)")
    if not os.access(runtime_path(), os.X_OK):
        pytest.fail(f"runtime under test not found or not executable: {runtime_path()}")
    os.makedirs(SESSION_DIR, mode=0o700, exist_ok=True)
    yield SESSION_DIR
    problems = []
    for m in reversed(mountinfo.read()):
        if SESSION_DIR in m.mount_point:
            problems.append(f"mount {m.mount_point}")
            subprocess.run(["umount", "-l", m.mount_point], capture_output=True)
    shutil.rmtree(SESSION_DIR, ignore_errors=True)
    remove_cgroup_parent()
    assert not problems, f"left behind at session end: {problems}"


@pytest.fixture(scope="session")
def rootfs_template(tmp_path_factory):
    """One busybox rootfs per session; bundles copy it (hard links)."""
    return make_rootfs(str(tmp_path_factory.mktemp("template") / "rootfs"))


@pytest.fixture(scope="session")
def probe_binary(tmp_path_factory):
    """integration/helpers/probe.c built statically (syscall and id probes for security tests)."""
    from integration.helpers.probe import build
    return build(str(tmp_path_factory.mktemp("probe")))


@pytest.fixture
def runtime_root(session_dir):
    """A private, initially empty --root for one test."""
    root = os.path.join(session_dir, f"r{next(_root_counter)}")
    os.makedirs(root, mode=0o700)
    return root


@pytest.fixture
def runtime(request, runtime_root, tmp_path, rootfs_template):
    """The runtime under test with a private --root; see integration/helpers/runtime.py.

    Teardown: `delete --force` for every container it handed out (even if the test failed), then the
    test FAILS if anything is left: state dir, mounts under the bundle, cgroup dirs, processes, or any
    other entry in the private root.
    """
    rt = Runtime(runtime_root, tmp_path, rootfs_template, name=request.node.name.replace("test_", ""))
    yield rt
    problems = rt.cleanup()
    if os.path.isdir(runtime_root):
        extra = os.listdir(runtime_root)
        if extra:
            problems.append(f"entries left in --root {runtime_root}: {extra}")
        for m in reversed(mountinfo.read()):
            if m.mount_point.startswith(runtime_root + "/"):
                problems.append(f"mount {m.mount_point} under --root")
                subprocess.run(["umount", "-l", m.mount_point], capture_output=True)
        shutil.rmtree(runtime_root, ignore_errors=True)
    if problems:
        pytest.fail("leftovers:\n" + "\n".join(problems), pytrace=False)


# --- namespace holders and host mounts ------------------------------------------------------------

def _mount_points():
    with open("/proc/self/mountinfo") as f:
        return {line.split()[4] for line in f}


@pytest.fixture
def netns():
    """A named network namespace (`ip netns add`); yields its path, deleted afterwards. The first
    `ip netns add` on a machine makes /run/netns and bind-mounts it onto itself: both are undone
    when this fixture caused them and no other namespace is left there."""
    name = f"pyrunc-test-{os.getpid()}-{next(_root_counter)}"
    existed = os.path.isdir("/run/netns")
    mounted = "/run/netns" in _mount_points()
    cp = execute(["ip", "netns", "add", name])
    assert cp.returncode == 0, f"ip netns add failed: {cp.stderr}"
    try:
        yield f"/run/netns/{name}"
    finally:
        execute(["ip", "netns", "delete", name])
        if not mounted and "/run/netns" in _mount_points() and not os.listdir("/run/netns"):
            execute(["umount", "/run/netns"])
            if not existed:
                os.rmdir("/run/netns")


@pytest.fixture
def ns_holder():
    """Factory: ns_holder('ipc', 'uts', ...) starts `unshare --ipc --uts ... sleep 1000` and returns
    the pid of a process inside all those namespaces (for 'pid': the forked sleep, pid 1 there).
    Killed at teardown."""
    from integration.helpers.runtime import wait_for
    procs, holders = [], []

    def start(*kinds):
        argv = ["unshare"] + [f"--{k}" for k in kinds]
        if "pid" in kinds:
            argv += ["--fork", "--kill-child"] + (["--mount-proc"] if "mount" in kinds else [])
        proc = subprocess.Popen(argv + ["sleep", "1000"], stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        procs.append(proc)
        ns_name = {"mount": "mnt", "net": "net", "pid": "pid"}

        def ready():
            assert proc.poll() is None, f"{argv} failed: {proc.stderr.read().decode()}"
            pid = proc.pid
            if "pid" in kinds:
                with open(f"/proc/{pid}/task/{pid}/children") as f:
                    children = f.read().split()
                if not children:
                    return None
                pid = int(children[0])
            for k in kinds:
                k = ns_name.get(k, k)
                if os.readlink(f"/proc/{pid}/ns/{k}") == os.readlink(f"/proc/self/ns/{k}"):
                    return None
            with open(f"/proc/{pid}/comm") as f:
                if f.read().strip() != "sleep":
                    return None
            return pid
        pid = wait_for(ready, what=f"the namespace holder {argv}")
        holders.append(pid)
        return pid

    yield start
    for pid in holders:
        try:
            os.kill(pid, 9)
        except OSError:
            pass
    for proc in procs:
        proc.kill()
        proc.wait()


@pytest.fixture
def host_mount(tmp_path):
    """Factory: host_mount(shared=False, **opts) mounts a fresh tmpfs on the host; returns its dir.

    Unmounted (lazily, recursively) at teardown. Kept outside the bundle dirs.
    """
    mounted = []

    def mount(name=None, shared=False, options="size=1m"):
        target = tmp_path / (name or f"hostmnt-{len(mounted)}")
        target.mkdir(parents=True, exist_ok=True)
        cp = execute(["mount", "-t", "tmpfs", "-o", options, "pyrunc-test", str(target)])
        assert cp.returncode == 0, cp.stderr
        mounted.append(str(target))
        if shared:
            cp = execute(["mount", "--make-shared", str(target)])
            assert cp.returncode == 0, cp.stderr
        return target

    yield mount
    for target in reversed(mounted):
        execute(["umount", "-R", "-l", target])
