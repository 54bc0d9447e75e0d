"""How pyrunc starts init (process/spawn.py): one clone when every namespace is new and neither a
user nor a time namespace is asked for, an intermediate child otherwise; both give the same container.

The path is seen from a createRuntime hook, which the runtime runs while init waits: after one
clone init's parent is the runtime (the hook's parent too); through the intermediate, init has
been reparented when the intermediate exited. A time namespace (zero offsets) is the smallest
change of config that takes the intermediate.
"""
import ctypes
import json
import os
import sys

import pytest

from integration.helpers import mountinfo


pytestmark = pytest.mark.pyrunc_only

PR_SET_CHILD_SUBREAPER = 36
NS_KINDS = ("pid", "net", "ipc", "uts", "mnt", "cgroup")
# Runs in the container: what init is, where it is, which namespaces it has.
PROBE = ("echo pid=$$; sed -n 's/^PPid:[[:space:]]*/PPid=/p' /proc/1/status; "
         "sed 's/^/cgroup=/' /proc/self/cgroup; "
         + " ".join(f"echo ns_{k}=$(readlink /proc/self/ns/{k});" for k in NS_KINDS))


@pytest.fixture
def subreaper():
    """The test process as child subreaper, as a shim is: a created container's init is reparented
    to it when the runtime exits. Undone, and every orphan reaped, afterwards."""
    libc = ctypes.CDLL(None, use_errno=True)
    assert libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    try:
        yield
    finally:
        libc.prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)
        while True:
            try:
                if os.waitpid(-1, os.WNOHANG)[0] == 0:
                    break
            except ChildProcessError:
                break


def _config(runtime, log, intermediate):
    config = runtime.config(["sh", "-c", "{ " + PROBE + " } > /shared/out.tmp && mv /shared/out.tmp /shared/out"])
    config["linux"]["namespaces"].append({"type": "cgroup"})  # not in runc's template, checked below
    if intermediate:
        config["linux"]["namespaces"].append({"type": "time"})
    hook = ("import json, os, sys\n"
            "pid = json.load(sys.stdin)['pid']\n"
            "status = dict(l.split(':', 1) for l in open(f'/proc/{pid}/status'))\n"
            f"open({str(log)!r}, 'w').write(json.dumps([int(status['PPid']), os.getppid()]))\n")
    config["hooks"] = {"createRuntime": [{"path": sys.executable, "args": ["python3", "-S", "-c", hook]}]}
    return config


def _create_and_probe(runtime, tmp_path, intermediate):
    """Create, look at init from the host, start, read the probe; returns what both sides saw."""
    log = tmp_path / f"hook-{intermediate}"
    c = runtime.container(_config(runtime, log, intermediate), shared=True)
    init_parent_at_hook, runtime_pid = json.loads(log.read_text())
    pid = c.pid
    with open(f"/proc/{pid}/status") as f:
        parent_after_create = int(dict(line.split(":", 1) for line in f)["PPid"])
    with open(f"/proc/{pid}/cgroup") as f:
        host_cgroups = f.read().split()
    c.start()
    out = c.read("out")
    _, status = os.waitpid(pid, 0)  # ours to reap: init was reparented to us
    assert os.waitstatus_to_exitcode(status) == 0
    c.wait_status("stopped")
    c.delete()
    inside = [line.split("=", 1) for line in out.split()]
    return {"one_clone": init_parent_at_hook == runtime_pid, "parent_after_create": parent_after_create,
            "host_cgroups": host_cgroups, "cgroups_path": c.cgroups_path, "inside": inside}


@pytest.mark.parametrize("intermediate", [False, True], ids=["one-clone", "intermediate"])
def test_path_taken_and_the_container_it_makes(subreaper, runtime, tmp_path, intermediate):
    seen = _create_and_probe(runtime, tmp_path, intermediate)
    assert seen["one_clone"] is not intermediate
    assert seen["parent_after_create"] == os.getpid()
    cgroups = [value.split(":", 2) for key, value in seen["inside"] if key == "cgroup"]
    inside = dict(seen["inside"])
    assert inside["pid"] == "1" and inside["PPid"] == "0"
    for kind in NS_KINDS:
        assert inside[f"ns_{kind}"] != os.readlink(f"/proc/self/ns/{kind}"), kind
    # Init is in the container's cgroup in every hierarchy, and its cgroup namespace is rooted there.
    host = [line.split(":", 2) for line in seen["host_cgroups"]]
    assert [(i, names) for i, names, _ in host] == [(i, names) for i, names, _ in cgroups]
    assert {path for _, _, path in host} == {seen["cgroups_path"]}
    assert {path for _, _, path in cgroups} == {"/"}
    assert {names for _, names, _ in host} == {key for _, _, key in mountinfo.cgroup_hierarchies()}


def test_state_says_created_only_once_init_is_ready(runtime, tmp_path):
    """A createRuntime hook (init started, not ready yet) never sees a "created" container: runc
    has no state yet (`state` fails); pyrunc has one from create's first step, so that `delete
    --force` finds what a killed create made, and says "creating" (issue 13). `state` after create
    sees all of it."""
    log = tmp_path / "during"
    config = runtime.config(["true"])
    hook = (f"{runtime.binary} --root {runtime.root} state \"$(sed 's/.*\"id\": *\"\\([^\"]*\\)\".*/\\1/')\" "
            f"> {log}.out 2>&1; echo $? > {log}")
    config["hooks"] = {"createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", hook]}]}
    c = runtime.container(config)
    if log.read_text() == "0\n":
        assert json.loads((tmp_path / "during.out").read_text())["status"] == "creating"
    else:
        assert log.read_text() == "1\n"  # no such container yet
    st = c.state()
    assert st["status"] == "created" and st["pid"] > 0 and st["id"] == c.id
    c.delete()
