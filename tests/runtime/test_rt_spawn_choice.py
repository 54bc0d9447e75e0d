"""Which configs start init with one clone and which through the intermediate (process/spawn.py),
and clone_fork's namespaces against the real kernel."""
import os

import pytest

from pyrunc.cgroups.selfjoin import SelfJoin
from pyrunc.linux.namespaces import NamespacePlan
from pyrunc.process.spawn import direct_clone_flags
from pyrunc.spec.template import default_config
from pyrunc.sys import calls, consts as c

# runc's template plus a new cgroup namespace (what Docker and podman add on cgroup v2 hosts)
DEFAULT = default_config()["linux"]["namespaces"] + [{"type": "cgroup"}]
NO_CGROUP_TARGETS = SelfJoin([])  # a real joiner with nothing to open: what direct_clone_flags sees


def _flags(namespaces, joiner=NO_CGROUP_TARGETS):
    return direct_clone_flags(NamespacePlan(namespaces), joiner)


def test_default_namespaces_take_one_clone_without_the_cgroup_namespace():
    assert {ns["type"] for ns in DEFAULT} == {"pid", "network", "ipc", "uts", "mount", "cgroup"}
    assert _flags(DEFAULT) == c.CLONE_NEWPID | c.CLONE_NEWNET | c.CLONE_NEWIPC | c.CLONE_NEWUTS | c.CLONE_NEWNS


def test_without_a_pid_namespace_the_clone_makes_the_others():
    namespaces = [ns for ns in DEFAULT if ns["type"] != "pid"]
    assert _flags(namespaces) == c.CLONE_NEWNET | c.CLONE_NEWIPC | c.CLONE_NEWUTS | c.CLONE_NEWNS


@pytest.mark.parametrize("kind", ["pid", "network", "ipc", "uts", "cgroup", "mount"])
def test_a_joined_namespace_needs_the_intermediate(kind):
    namespaces = [dict(ns, path=f"/proc/1/ns/{kind}") if ns["type"] == kind else ns for ns in DEFAULT]
    assert _flags(namespaces) is None


@pytest.mark.parametrize("kind", ["user", "time"])
def test_a_new_user_or_time_namespace_needs_the_intermediate(kind):
    assert _flags(DEFAULT + [{"type": kind}]) is None


def test_a_cgroup_the_runtime_must_join_needs_the_intermediate():
    assert _flags(DEFAULT, joiner=None) is None


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (new namespaces)")
def test_clone_fork_makes_the_child_pid_1_of_its_namespaces():
    r, w = os.pipe()
    pid = calls.clone_fork(c.CLONE_NEWPID | c.CLONE_NEWUTS)
    assert pid is not None, "this kernel has clone3"
    if pid == 0:
        try:
            os.close(r)
            os.write(w, f"{os.getpid()} {os.readlink('/proc/self/ns/uts')}".encode())
        finally:
            os._exit(0)
    os.close(w)
    try:
        with os.fdopen(r, "rb") as f:
            child_pid, child_uts = f.read().decode().split()
    finally:
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert child_pid == "1"
    assert child_uts != os.readlink("/proc/self/ns/uts")
