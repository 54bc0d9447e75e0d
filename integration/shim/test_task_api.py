"""Every Task method through the project's own ttrpc client, against a shim started as containerd
starts it, with pyrunc and runc under the shim; events checked at a stand-in events service."""
import os
import time
import uuid

import pytest

from pyrunc_shim.pb.containerd import runc_options_pb2, shim_pb2, types_pb2
from pyrunc_shim.ttrpc import framing
from pyrunc_shim.ttrpc.framing import TtrpcError


@pytest.fixture
def env(make_shim, binary):
    """A shim per call; the container id gets a unique suffix (use s.cid), because with no
    cgroupsPath the runtimes put the container in the cgroup /<id> of every hierarchy, which a
    fixed id would share with any other run of these tests on the machine."""
    suffix = uuid.uuid4().hex[:8]
    return lambda args, cid="c1", terminal=False: make_shim(args, binary, f"{cid}-{suffix}", terminal)


def _read(path, want, timeout=30):
    deadline = time.monotonic() + timeout
    while True:
        with open(path) as f:
            data = f.read()
        if want in data or time.monotonic() > deadline:
            return data
        time.sleep(0.1)


def test_lifecycle_and_events(env):
    s = env(["sh", "-c", "echo hello; exec sleep 1000"])
    out = os.path.join(s.dir, "out.log")
    pid = s.create(stdout="file://" + out)
    st = s.call("State", shim_pb2.StateRequest(id=s.cid))
    assert (st.status, st.pid) == (types_pb2.CREATED, pid)
    assert s.call("Start", shim_pb2.StartRequest(id=s.cid)).pid == pid
    assert "hello" in _read(out, "hello")
    assert s.call("State", shim_pb2.StateRequest(id=s.cid)).status == types_pb2.RUNNING
    assert [p.pid for p in s.call("Pids", shim_pb2.PidsRequest(id=s.cid)).processes] == [pid]
    assert s.call("Connect", shim_pb2.ConnectRequest(id=s.cid)).task_pid == pid
    assert s.call("Stats", shim_pb2.StatsRequest(id=s.cid)).stats.type_url == "io.containerd.cgroups.v1.Metrics"
    s.call("Kill", shim_pb2.KillRequest(id=s.cid, signal=9))
    w = s.call("Wait", shim_pb2.WaitRequest(id=s.cid))
    assert w.exit_status == 137
    st = s.call("State", shim_pb2.StateRequest(id=s.cid))
    assert (st.status, st.exit_status) == (types_pb2.STOPPED, 137)
    d = s.call("Delete", shim_pb2.DeleteRequest(id=s.cid))
    assert (d.pid, d.exit_status) == (pid, 137)
    with pytest.raises(TtrpcError) as e:
        s.call("State", shim_pb2.StateRequest(id=s.cid))
    assert e.value.code == framing.NOT_FOUND
    s.events.wait_for("/tasks/delete")
    assert s.events.topics() == ["/tasks/create", "/tasks/start", "/tasks/exit", "/tasks/delete"]
    assert all(ns == "pyrunc-test" for _, _, ns in s.events.events)
    s.call("Shutdown", shim_pb2.ShutdownRequest(id=s.cid))
    deadline = time.monotonic() + 30
    while os.path.exists(s.socket) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not os.path.exists(s.socket), "the shim did not exit after Delete + Shutdown"


def test_early_exit_is_queued_until_start_answered(env, binary):
    """A process that exits at once: its exit may be reaped before Start has returned; TaskExit
    must still come, and after TaskStart."""
    for i in range(3):
        s = env(["sh", "-c", "exit 3"], cid=f"early{i}")
        s.create()
        s.call("Start", shim_pb2.StartRequest(id=s.cid))
        assert s.call("Wait", shim_pb2.WaitRequest(id=s.cid)).exit_status == 3
        s.events.wait_for("/tasks/exit")
        t = s.events.topics()
        assert t.index("/tasks/start") < t.index("/tasks/exit"), t
        exit_ev = [m for topic, m, _ in s.events.events if topic == "/tasks/exit"][0]
        assert exit_ev.exit_status == 3 and exit_ev.id == s.cid


def test_client_disconnect_and_reconnect(env):
    s = env(["sleep", "1000"])
    s.create()
    s.call("Start", shim_pb2.StartRequest(id=s.cid))
    s.reconnect()   # the first client goes away (as containerd restarting does)
    assert s.call("State", shim_pb2.StateRequest(id=s.cid)).status == types_pb2.RUNNING
    s.call("Kill", shim_pb2.KillRequest(id=s.cid, signal=9))
    assert s.call("Wait", shim_pb2.WaitRequest(id=s.cid)).exit_status == 137


def test_errors(env):
    s = env(["sleep", "1000"])
    with pytest.raises(TtrpcError) as e:
        s.call("State", shim_pb2.StateRequest(id="nope"))
    assert e.value.code == framing.NOT_FOUND
    s.create()
    with pytest.raises(TtrpcError) as e:
        s.call("Checkpoint", shim_pb2.CheckpointTaskRequest(id=s.cid))
    assert e.value.code == framing.UNIMPLEMENTED
    with pytest.raises(TtrpcError) as e:
        s.client.call("containerd.task.v2.Task", "NoSuch", shim_pb2.StateRequest(), shim_pb2.StateResponse)
    assert e.value.code == framing.UNIMPLEMENTED
    big = shim_pb2.StateRequest(id="x" * (4 << 20))
    with pytest.raises(TtrpcError) as e:
        s.call("State", big)
    assert e.value.code == framing.RESOURCE_EXHAUSTED
    with pytest.raises(TtrpcError) as e:  # a running container cannot be deleted
        s.call("Start", shim_pb2.StartRequest(id=s.cid))
        s.call("Delete", shim_pb2.DeleteRequest(id=s.cid))
    assert e.value.code == framing.FAILED_PRECONDITION


def test_stdin_and_closeio(env):
    s = env(["sh", "-c", "cat; echo eof"])
    fifo = os.path.join(s.dir, "stdin")
    os.mkfifo(fifo)
    out = os.path.join(s.dir, "out")
    s.create(stdin=fifo, stdout="file://" + out)
    s.call("Start", shim_pb2.StartRequest(id=s.cid))
    w = os.open(fifo, os.O_WRONLY)
    os.write(w, b"line1\n")
    assert "line1" in _read(out, "line1")
    s.call("CloseIO", shim_pb2.CloseIORequest(id=s.cid, stdin=True))
    assert s.call("Wait", shim_pb2.WaitRequest(id=s.cid)).exit_status == 0
    os.close(w)
    assert _read(out, "eof") == "line1\neof\n"


def test_exec(env, binary):
    s = env(["sleep", "1000"])
    s.create()
    s.call("Start", shim_pb2.StartRequest(id=s.cid))
    out = os.path.join(s.dir, "exec.out")
    spec = {"args": ["sh", "-c", "echo in-exec; exit 4"], "cwd": "/", "env": ["PATH=/bin"],
            "user": {"uid": 0, "gid": 0}}
    import json
    from google.protobuf import any_pb2
    s.call("Exec", shim_pb2.ExecProcessRequest(
        id=s.cid, exec_id="e1", stdout="file://" + out,
        spec=any_pb2.Any(type_url="types.containerd.io/opencontainers/runtime-spec/1/Process",
                         value=json.dumps(spec).encode())))
    s.call("Start", shim_pb2.StartRequest(id=s.cid, exec_id="e1"))
    assert s.call("Wait", shim_pb2.WaitRequest(id=s.cid, exec_id="e1")).exit_status == 4
    assert s.call("Delete", shim_pb2.DeleteRequest(id=s.cid, exec_id="e1")).exit_status == 4
    assert _read(out, "in-exec") == "in-exec\n"
    s.events.wait_for("/tasks/exec-started")
    t = s.events.topics()
    assert t.index("/tasks/exec-added") < t.index("/tasks/exec-started")


def test_pause_resume(env, binary):
    s = env(["sleep", "1000"])
    s.create()
    s.call("Start", shim_pb2.StartRequest(id=s.cid))
    s.call("Pause", shim_pb2.PauseRequest(id=s.cid))
    assert s.call("State", shim_pb2.StateRequest(id=s.cid)).status == types_pb2.PAUSED
    s.call("Resume", shim_pb2.ResumeRequest(id=s.cid))
    assert s.call("State", shim_pb2.StateRequest(id=s.cid)).status == types_pb2.RUNNING
    s.events.wait_for("/tasks/resumed")


def test_terminal_and_resize(env, binary):
    s = env(["sh", "-c", "sleep 1; stty size; exit 0"], terminal=True)
    out = os.path.join(s.dir, "tty.out")
    s.create(stdout="file://" + out, terminal=True)
    s.call("ResizePty", shim_pb2.ResizePtyRequest(id=s.cid, width=91, height=37))
    s.call("Start", shim_pb2.StartRequest(id=s.cid))
    assert s.call("Wait", shim_pb2.WaitRequest(id=s.cid)).exit_status == 0
    assert "37 91" in _read(out, "37 91")


def test_update(env, binary):
    s = env(["sleep", "1000"])
    s.create()
    s.call("Start", shim_pb2.StartRequest(id=s.cid))
    from google.protobuf import any_pb2
    res = any_pb2.Any(type_url="types.containerd.io/opencontainers/runtime-spec/1/LinuxResources",
                      value=b'{"pids": {"limit": 50}}')
    s.call("Update", shim_pb2.UpdateTaskRequest(id=s.cid, resources=res))
    # The limit reached the container's cgroup (found from its init's /proc/<pid>/cgroup).
    pid = s.call("State", shim_pb2.StateRequest(id=s.cid)).pid
    with open(f"/proc/{pid}/cgroup") as f:
        pids_path = next(line.split(":", 2)[2].strip() for line in f if ":pids:" in line)
    with open(f"/sys/fs/cgroup/pids{pids_path}/pids.max") as f:
        assert f.read().strip() == "50"
