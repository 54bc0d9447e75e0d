"""Make pyrunc importable from the source tree, and keep real cgroup tests from leaking cgroups."""
import errno
import glob
import os
import signal
import sys
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
RUNTIME = os.path.join(os.path.dirname(os.path.dirname(HERE)), "runtime")
for _p in (RUNTIME, HERE):  # HERE: for the shared host fixtures in hosts.py
    if _p not in sys.path:
        sys.path.insert(0, _p)

CGROUP_ROOT = "/sys/fs/cgroup"
TEST_PREFIX = "pyrunc-test-"


def _write(path, value):
    try:
        fd = os.open(path, os.O_WRONLY)
    except OSError:
        return
    try:
        os.write(fd, value.encode())
    except OSError:
        pass
    finally:
        os.close(fd)


def _procs(cgdir):
    try:
        with open(os.path.join(cgdir, "cgroup.procs")) as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def _tree_bottom_up(top):
    dirs = []
    for dirpath, dirnames, _ in os.walk(top):
        dirs.append(dirpath)
    return sorted(dirs, key=lambda d: d.count("/"), reverse=True)


def sweep(name):
    """Remove every cgroup called `name` directly under any hierarchy, whatever state it is in.

    Independent of the code under test on purpose: a bug there must not leave cgroups behind.
    """
    tops = glob.glob(os.path.join(CGROUP_ROOT, "*", name))
    tops += glob.glob(os.path.join(CGROUP_ROOT, name))
    for top in tops:
        for d in _tree_bottom_up(top):
            # Frozen processes cannot die, so thaw before killing.
            _write(os.path.join(d, "freezer.state"), "THAWED")
            _write(os.path.join(d, "cgroup.freeze"), "0")
    for top in tops:
        for d in _tree_bottom_up(top):
            for pid in _procs(d):
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
    errors = []
    for top in tops:
        for d in _tree_bottom_up(top):
            deadline = time.monotonic() + 5
            while True:
                try:
                    os.rmdir(d)
                    break
                except OSError as exc:
                    if exc.errno == errno.ENOENT:
                        break
                    if exc.errno != errno.EBUSY or time.monotonic() > deadline:
                        errors.append(f"{d}: {exc}")
                        break
                    time.sleep(0.01)
    return errors


def _v2_roots():
    return [p for p in (os.path.join(CGROUP_ROOT, "unified"), CGROUP_ROOT)
            if os.path.exists(os.path.join(p, "cgroup.subtree_control"))]


def _subtree_control(root):
    try:
        with open(os.path.join(root, "cgroup.subtree_control")) as f:
            return set(f.read().split())
    except OSError:
        return set()


@pytest.fixture
def cgroup_name(request):
    """A unique top-level cgroup name; everything under it is removed at teardown, and the v2
    root's cgroup.subtree_control is put back as it was (the manager delegates controllers from
    the root down, and on a hybrid host a controller left enabled there, hugetlb, makes crun refuse
    the host)."""
    name = f"{TEST_PREFIX}{os.getpid()}-{os.urandom(4).hex()}"
    before = {root: _subtree_control(root) for root in _v2_roots()}
    yield name
    errors = sweep(name)
    for root, enabled in before.items():
        for controller in _subtree_control(root) - enabled:
            _write(os.path.join(root, "cgroup.subtree_control"), "-" + controller)
        if _subtree_control(root) != enabled:
            errors.append(f"{root}/cgroup.subtree_control: could not restore {sorted(enabled)}")
    assert not errors, f"could not clean up test cgroups: {errors}"


@pytest.fixture(scope="session", autouse=True)
def _no_leftover_cgroups():
    yield
    if os.geteuid() != 0:
        return
    # Catch-all for this session's names, should a test have bypassed cgroup_name.
    for path in glob.glob(os.path.join(CGROUP_ROOT, "*", f"{TEST_PREFIX}{os.getpid()}-*")):
        sweep(os.path.basename(path))


@pytest.fixture
def spawn():
    """Start helper processes; they are killed and reaped at teardown even if the test fails."""
    import subprocess

    procs = []

    def start(*argv, **kwargs):
        kwargs.setdefault("stdin", subprocess.DEVNULL)
        p = subprocess.Popen(list(argv), **kwargs)
        procs.append(p)
        return p

    yield start
    for p in procs:
        if p.poll() is None:
            _thaw_test_cgroups_of(p.pid)  # a frozen process would never act on SIGKILL
            p.kill()
        p.wait()


def _thaw_test_cgroups_of(pid):
    try:
        with open(f"/proc/{pid}/cgroup") as f:
            lines = f.read().splitlines()
    except OSError:
        return
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if TEST_PREFIX not in path:
            continue  # never touch cgroups that tests did not make
        if "freezer" in controllers.split(","):
            _write(os.path.join(CGROUP_ROOT, "freezer", path.lstrip("/"), "freezer.state"), "THAWED")
        elif controllers == "":
            for base in (os.path.join(CGROUP_ROOT, "unified"), CGROUP_ROOT):
                _write(os.path.join(base, path.lstrip("/"), "cgroup.freeze"), "0")
