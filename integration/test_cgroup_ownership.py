"""The runtime signals and removes only what is the container's (issue 13, "Safety first").

What the runtime-spec says:
- runtime.md, delete: "Deleting a container MUST delete the resources that were created during
  the create step. Note that resources associated with the container, but not created by this
  container, MUST NOT be deleted."
- config-linux.md, cgroupsPath: an absolute path is relative to the cgroups mount point, a
  relative one MAY be taken relative to a runtime-determined location; "Runtimes MAY consider
  certain cgroupsPath values to be invalid, and MUST generate an error if this is the case."

What runc 1.1.5 does:
- a relative cgroupsPath is cleaned so that it cannot climb (".", "..", "../../.." all become the
  caller's own cgroup) and the container goes there; "/" is the root of every hierarchy;
- a cgroup that already holds processes: create warns "container's cgroup is not empty: N
  process(es) found" (and that 1.2 will refuse it) and goes on;
- delete kills only init when the container has a pid namespace of its own (the kernel kills the
  rest), and every process of the cgroup otherwise, foreign ones included; so does the undo of a
  failed create and `kill --all`; it then removes the cgroup dirs, also those it did not make;
- `kill --all` of a stopped container signals what is left in its cgroup and exits 0.

pyrunc refuses a cgroupsPath that resolves to a hierarchy root or to the caller's cgroup or one
above it, and in a cgroup it did not make it signals only the container's own processes and
removes nothing. Every test here runs the runtime from a private "caller" cgroup holding a foreign
`sleep`, so even runc (expected to fail, runc_lacks) can only ever hit that sleep.
"""
import itertools
import json
import os
import subprocess
import time

import pytest

from integration.helpers import mountinfo
from integration.helpers.runtime import (CGROUP_PARENT, alive, describe, drop_namespace, execute,
                                         kill_cgroup_tree, wait_for)


def _hierarchies():
    return [mp for mp, _, _ in mountinfo.cgroup_hierarchies()]


def _make_cgroup(rel):
    """mkdir -p /<rel> in every hierarchy (cpuset filled from the root, so a process may join)."""
    for mp in _hierarchies():
        path = mp
        for part in rel.strip("/").split("/"):
            path = os.path.join(path, part)
            os.makedirs(path, exist_ok=True)
            for name in ("cpuset.cpus", "cpuset.mems"):
                f = os.path.join(path, name)
                if os.path.exists(f) and not open(f).read().strip():
                    with open(os.path.join(os.path.dirname(path), name)) as src, open(f, "w") as dst:
                        dst.write(src.read().strip())


def _join_script(rel):
    """sh that moves itself into /<rel> of every hierarchy, then execs its arguments."""
    moves = " ".join(os.path.join(mp, rel.strip("/"), "cgroup.procs") for mp in _hierarchies())
    return f'for f in {moves}; do echo $$ > "$f" || exit 99; done; exec "$@"'


def _remove_cgroup(rel):
    for mp in _hierarchies():
        kill_cgroup_tree(os.path.join(mp, rel.strip("/")))


class Caller:
    """A private cgroup /pyrunc-test/<name>/caller holding a foreign sleep; run() runs the
    runtime from inside it. Removed (sleep killed, dirs gone) at teardown."""

    def __init__(self, name):
        self.parent = f"/{CGROUP_PARENT}/{name}"
        self.rel = f"{self.parent}/caller"
        _make_cgroup(self.rel)
        self.sleeper = subprocess.Popen(["sh", "-c", _join_script(self.rel), "sh", "sleep", "1000"],
                                        start_new_session=True)
        wait_for(lambda: self.rel in open(f"/proc/{self.sleeper.pid}/cgroup").read() or None,
                 what="the foreign sleep to join the caller cgroup")

    def run(self, runtime, *args, timeout=60):
        cp = execute(["sh", "-c", _join_script(self.rel), "sh"] + runtime.argv(*args), timeout=timeout)
        assert cp.returncode != 99, describe(cp)
        return cp

    def close(self):
        self.sleeper.kill()
        self.sleeper.wait()
        _remove_cgroup(self.parent)


_callers = itertools.count(1)


@pytest.fixture
def caller():
    """Requested before `runtime`, so it is torn down after the runtime's own leftover checks."""
    c = Caller(f"own-{os.getpid()}-{next(_callers)}")
    yield c
    c.close()


def _untracked(c, cgroups_path):
    """Put cgroupsPath in the bundle, and keep the fixture's leftover check off the cgroup: its
    path is not a place of the container's own (a relative "." would name the hierarchy root)."""
    c.config["linux"]["cgroupsPath"] = cgroups_path
    with open(os.path.join(c.bundle, "config.json"), "w") as f:
        json.dump(c.config, f)
    c.cgroups_path = None


# --- refused paths -----------------------------------------------------------------------------

@pytest.mark.runc_lacks("runc cleans them to the caller's own cgroup, creates the container there "
                        "and only warns that the cgroup is not empty")
@pytest.mark.parametrize("which", [".", "..", "../../..", "./", "../.", "SELF", "PARENT"])
def test_cgroups_path_at_or_above_the_callers_cgroup_is_refused(caller, runtime, which):
    path = {"SELF": caller.rel, "PARENT": caller.parent}.get(which, which)
    c = runtime.bundle(["sleep", "1000"])
    _untracked(c, path)
    cp = caller.run(runtime, "create", "--bundle", c.bundle, c.id)
    assert cp.returncode == 1, describe(cp)
    assert "linux.cgroupsPath" in cp.stderr and "caller" in cp.stderr, describe(cp)
    assert alive(caller.sleeper.pid), "the caller's own process was killed"
    assert not os.path.exists(os.path.join(runtime.root, c.id))


@pytest.mark.pyrunc_only  # runc would put the container in the root cgroup, and its delete then
# removes every empty cgroup of the host (RemovePath recurses): not something to run here.
@pytest.mark.parametrize("path", ["/", "//", "/..", "/../..", "/./."])
def test_cgroups_path_at_a_hierarchy_root_is_refused(runtime, path):
    c = runtime.bundle(["sleep", "1000"])
    _untracked(c, path)
    cp = runtime.fail("create", "--bundle", c.bundle, c.id)
    assert "linux.cgroupsPath" in cp.stderr and "root of the cgroup hierarchy" in cp.stderr
    assert c.leftovers() == []


# --- a shared cgroup: foreign processes are never signalled, the cgroup never removed ----------

def _shared(caller, runtime, config):
    """A container whose cgroupsPath is the caller's cgroup's sibling that already holds a foreign
    sleep (an absolute path naming a busy cgroup: allowed, with runc's warning)."""
    rel = f"{caller.parent}/shared"
    _make_cgroup(rel)
    foreign = subprocess.Popen(["sh", "-c", _join_script(rel), "sh", "sleep", "1000"], start_new_session=True)
    wait_for(lambda: rel in open(f"/proc/{foreign.pid}/cgroup").read() or None, what="foreign sleep")
    c = runtime.bundle(config, shared=True)
    _untracked(c, rel)
    return c, foreign, rel


@pytest.mark.runc_lacks("runc's kill --all signals every process of the cgroup (and without a pid "
                        "namespace so does its delete)")
@pytest.mark.parametrize("pidns", [True, False])
def test_shared_cgroup_foreign_process_survives_kill_all_and_delete(caller, runtime, pidns):
    config = runtime.config(["sh", "-c", "sleep 1000 & echo $! > /shared/child; exec sleep 1000"])
    if not pidns:
        drop_namespace(config, "pid")
    c, foreign, rel = _shared(caller, runtime, config)
    try:
        cp = c.create()
        assert "container's cgroup is not empty: 1 process(es) found" in cp.stderr, describe(cp)
        c.start()
        child = int(c.read("child")) if not pidns else None
        init = c.pid
        runtime.run("kill", "--all", c.id, "KILL")
        wait_for(lambda: not alive(init), what="container init to die")
        assert child is None or not alive(child), "kill --all missed a process of the container"
        assert foreign.poll() is None, "kill --all killed a process that is not the container's"
        c.delete(force=True)
        assert foreign.poll() is None, "delete killed a process that is not the container's"
        # Not made by this container: MUST NOT be deleted (runtime-spec); it is busy anyway.
        assert all(os.path.isdir(os.path.join(mp, rel.strip("/"))) for mp in _hierarchies())
        assert c.leftovers() == []
    finally:
        foreign.kill()
        foreign.wait()


@pytest.mark.runc_lacks("runc's undo of a failed create without a pid namespace kills every process "
                        "of the cgroup")
def test_failed_create_in_shared_cgroup_spares_foreign_process(caller, runtime):
    config = drop_namespace(runtime.config(["/no/such/binary"]), "pid")
    c, foreign, _ = _shared(caller, runtime, config)
    try:
        cp = c.create(check=False)
        assert cp.returncode == 1, describe(cp)
        time.sleep(0.2)
        assert foreign.poll() is None, "the undo of a failed create killed a foreign process"
        assert c.leftovers() == []
    finally:
        foreign.kill()
        foreign.wait()


# --- a cgroup that existed before: kept, and usable again ----------------------------------------

def _pre_existing(caller):
    rel = f"{caller.parent}/pre"
    _make_cgroup(rel)
    return rel


def test_create_in_a_cgroup_that_has_seen_cgroup_kill(caller, runtime):
    """cgroup.kill leaves a count behind (Linux 6.14+) that makes the kernel kill any child cloned
    into that cgroup by clone3(CLONE_INTO_CGROUP): pyrunc's init then never became ready there."""
    rel = _pre_existing(caller)
    kill_file = os.path.join("/sys/fs/cgroup/unified" if os.path.isdir("/sys/fs/cgroup/unified")
                             else "/sys/fs/cgroup", rel.strip("/"), "cgroup.kill")
    if not os.path.exists(kill_file):
        pytest.fail(f"{kill_file} missing: this test needs Linux 5.14+ with cgroup2 mounted")
    with open(kill_file, "w") as f:
        f.write("1")
    c = runtime.bundle(["sh", "-c", "echo hello > /shared/out"], shared=True)
    _untracked(c, rel)
    c.create()
    c.start()
    assert c.read("out").strip() == "hello"
    c.wait_status("stopped")
    c.delete()
    assert c.leftovers() == []


@pytest.mark.runc_lacks("runc removes a cgroup dir it did not create once the container is gone")
def test_delete_keeps_a_cgroup_it_did_not_create_and_it_is_reusable(caller, runtime):
    rel = _pre_existing(caller)
    for _ in range(2):  # the second create in the same cgroup: the first delete left it usable
        c = runtime.bundle(["sleep", "1000"])
        _untracked(c, rel)
        c.create()
        c.start()
        c.delete(force=True)
        assert c.leftovers() == []
        assert all(os.path.isdir(os.path.join(mp, rel.strip("/"))) for mp in _hierarchies()), \
            "delete removed a cgroup the container did not create"


# --- kill --all once init has exited -------------------------------------------------------------

def test_kill_all_on_a_stopped_container_kills_what_is_left(runtime):
    """runc: exit 0, and the shared pid namespace's orphans left in the cgroup are signalled (under
    containerd's CRI a pod's orphans otherwise outlive their container)."""
    config = drop_namespace(runtime.config(["sh", "-c", "sleep 1000 & echo $! > /shared/orphan"]), "pid")
    c = runtime.container(config, shared=True)
    c.start()
    orphan = int(c.read("orphan"))
    c.wait_status("stopped")
    assert alive(orphan)
    runtime.run("kill", "--all", c.id, "KILL")
    wait_for(lambda: not alive(orphan), what="the orphan to be killed")
    c.delete()
    assert c.leftovers() == []


def test_kill_all_on_a_stopped_container_with_nothing_left_succeeds(runtime):
    c = runtime.container(["true"])
    c.start()
    c.wait_status("stopped")
    runtime.run("kill", "--all", c.id, "KILL")
    runtime.fail("kill", c.id, "KILL")  # without --all: init is gone, as runc says
    c.delete()
