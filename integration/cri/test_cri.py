"""Kubernetes' path to pyrunc: containerd 1.6's CRI plugin (driven by a CRI v1 client, as the
kubelet drives it) with both handlers: `pyrunc` (io.containerd.pyrunc.v2, one shim per pod) and
`runc-pyrunc` (containerd's runc shim with pyrunc as BinaryName). Each test removes its pods; the
module's fixture then finds no netns, veth, cgroup, mount, IP, rule or shim left (cri.traces)."""
import os
import re
import time

import grpc
import pytest

from integration.cri.cri import K8S_NS
from integration.cri.pb.cri import api_pb2 as api
from integration.cri.pods import Pod
from integration.cri.stream import exec_stream

LOOP = "trap 'exit 0' TERM; while :; do sleep 0.1; done"  # stops at once on SIGTERM


@pytest.fixture
def pods(cri):
    made = []

    def make(handler, name, **kw):
        p = Pod(cri, handler, f"{name}-{handler}", **kw)
        made.append(p)
        return p
    yield make
    for p in made:
        p.remove()


def _cgroup_file(cri, pod, cid, controller, name):
    return f"/sys/fs/cgroup/{controller}{cri.cgroup_parent}/pod{pod.config.metadata.uid}/{cid}/{name}"


def test_pod_lifecycle(cri, pods, handler):
    """runp, two containers, exec, logs, stats, update, stop, remove; one shim for the whole pod."""
    pod = pods(handler, "life")
    assert cri.cri.PodSandboxStatus(api.PodSandboxStatusRequest(pod_sandbox_id=pod.id)).status.network.ip.startswith(
        cri.subnet.rsplit(".", 1)[0] + ".")
    app = pod.container("app", "sh", "-c", f"echo hello-out; echo hello-err >&2; {LOOP}")
    side = pod.container("side", "sleep", "1000")
    assert pod.status(app).state == pod.status(side).state == api.CONTAINER_RUNNING
    kinds = list(cri.shims().values())
    assert kinds == ["pyrunc" if handler == "pyrunc" else "runc"], kinds  # sandbox, app and side: one shim

    r = cri.cri.ExecSync(api.ExecSyncRequest(container_id=app, cmd=["sh", "-c", "echo out; echo err >&2; exit 3"],
                                             timeout=30))
    assert (r.stdout, r.stderr, r.exit_code) == (b"out\n", b"err\n", 3)
    r = cri.cri.ExecSync(api.ExecSyncRequest(container_id=side, cmd=["hostname"], timeout=30))
    assert r.stdout == f"life-{handler}\n".encode()

    deadline = time.monotonic() + 10
    while "hello-err" not in pod.log("app") and time.monotonic() < deadline:
        time.sleep(0.1)
    lines = pod.log("app").splitlines()  # the CRI log format: time stream tag text
    assert sorted(re.sub(r"^\S+ ", "", ln) for ln in lines) == ["stderr F hello-err", "stdout F hello-out"], lines

    stats = cri.cri.ContainerStats(api.ContainerStatsRequest(container_id=app)).stats
    assert stats.attributes.id == app and stats.memory.working_set_bytes.value > 0
    assert stats.cpu.usage_core_nano_seconds.value > 0

    cri.cri.UpdateContainerResources(api.UpdateContainerResourcesRequest(
        container_id=side, linux=api.LinuxContainerResources(memory_limit_in_bytes=96 << 20, cpu_shares=512)))
    with open(_cgroup_file(cri, pod, side, "memory", "memory.limit_in_bytes")) as f:
        assert int(f.read()) == 96 << 20
    with open(_cgroup_file(cri, pod, side, "cpu", "cpu.shares")) as f:
        assert int(f.read()) == 512

    cri.cri.StopContainer(api.StopContainerRequest(container_id=app, timeout=10))
    assert pod.status(app).exit_code == 0  # its TERM trap ran
    cri.cri.StopContainer(api.StopContainerRequest(container_id=side, timeout=1))
    assert pod.status(side).exit_code == 137  # sleep, pid 1, ignores TERM: killed after the timeout
    for cid in (app, side):
        cri.cri.RemoveContainer(api.RemoveContainerRequest(container_id=cid))
    with pytest.raises(grpc.RpcError) as e:
        pod.status(app)
    assert e.value.code() == grpc.StatusCode.NOT_FOUND


def test_oom_killed(cri, pods, handler):
    pod = pods(handler, "oom")
    cid = pod.container("hog", "sh", "-c", "dd if=/dev/zero of=/dev/null bs=64M count=1", memory=16 << 20)
    st = pod.wait_exited(cid)
    assert (st.exit_code, st.reason) == (137, "OOMKilled"), st


def test_shared_pid_namespace_orphan_is_killed(cri, pods, handler):
    """A container of a pod sharing its pid namespace exits and leaves a child: the child is killed
    (it would live on in the pod, reparented to the pause process), the exit code is the init's."""
    pod = pods(handler, "sharedpid", pid=api.POD)
    keeper = pod.container("keeper", "sleep", "1000")
    cid = pod.container("leaver", "sh", "-c", "sleep 999 & echo started; exit 3")
    st = pod.wait_exited(cid)
    assert st.exit_code == 3
    pause = pod.sandbox_pid()
    pidns = os.readlink(f"/proc/{pause}/ns/pid")
    deadline = time.monotonic() + 10
    while True:
        left = []
        for p in os.listdir("/proc"):
            try:
                if p.isdigit() and os.readlink(f"/proc/{p}/ns/pid") == pidns:
                    with open(f"/proc/{p}/stat") as f:
                        if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                            continue  # killed; our pause (sleep) does not reap, the real one does
                    with open(f"/proc/{p}/cmdline", "rb") as f:
                        left.append(f.read().replace(b"\0", b" ").strip().decode())
            except OSError:
                pass
        if "sleep 999" not in left or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert sorted(left) == ["sleep 1000", "sleep 2147483647"], left  # keeper and pause only
    r = cri.cri.ExecSync(api.ExecSyncRequest(container_id=keeper, cmd=["ps", "-o", "pid,args"], timeout=30))
    assert b"sleep 999" not in r.stdout and b"sleep 2147483647" in r.stdout  # one pid namespace: pause is there


def test_containerd_restart_with_pods_running(cri, pods, handler):
    pod = pods(handler, "restart")
    cid = pod.container("app", "sh", "-c", LOOP)
    shims = cri.shims()
    cri.restart()
    assert cri.shims() == shims  # the shims outlived containerd
    assert pod.status(cid).state == api.CONTAINER_RUNNING
    r = cri.cri.ExecSync(api.ExecSyncRequest(container_id=cid, cmd=["echo", "after"], timeout=30))
    assert (r.stdout, r.exit_code) == (b"after\n", 0)
    cri.cri.StopContainer(api.StopContainerRequest(container_id=cid, timeout=10))
    assert pod.status(cid).exit_code == 0
    cri.cri.RemoveContainer(api.RemoveContainerRequest(container_id=cid))
    assert cri.ctr("tasks", "ls", "-q").stdout.split() == [pod.id]
    assert K8S_NS in cri.ctr("namespaces", "ls", "-q").stdout.split()


def test_streaming_exec(cri, pods, handler):
    """Exec through the CRI streaming server (websocket, v4.channel.k8s.io): stdin in, stdout and
    stderr out as separate channels, the exit code in the final status."""
    pod = pods(handler, "stream")
    cid = pod.container("app", "sleep", "1000")
    url = cri.cri.Exec(api.ExecRequest(container_id=cid, cmd=["sh", "-c", "read a; echo got-$a; echo err >&2; exit 3"],
                                       stdin=True, stdout=True, stderr=True)).url
    out, err, status = exec_stream(url, stdin=b"hello\n")
    assert (out, err) == (b"got-hello\n", b"err\n")
    assert status.get("reason") == "NonZeroExitCode", status
    assert status["details"]["causes"] == [{"reason": "ExitCode", "message": "3"}]
    url = cri.cri.Exec(api.ExecRequest(container_id=cid, cmd=["echo", "fine"], stdout=True)).url
    assert exec_stream(url)[0::2] == (b"fine\n", {"metadata": {}, "status": "Success"})
