"""The containerd-mode shim's lean mode, through the project's own ttrpc client: an idle shim execs
itself into lean.py (no protobuf mapped, less RSS), keeps copying stdio there, and execs back into
the full mode for each request, connection, exit and OOM event, with nothing lost on the way:
Waits pending across it, output and input written while lean, a fast writer across many
transitions, terminals, client disconnects."""
import json
import os
import random
import threading
import time

import pytest
from google.protobuf import any_pb2, empty_pb2

from integration.shim.conftest import PYRUNC
from integration.shim.shimclient import mapped_files, rss_kib
from pyrunc_shim.pb.containerd import shim_pb2, types_pb2
from pyrunc_shim.ttrpc.client import Client


@pytest.fixture
def env(make_shim):
    # an id (and so a cgroup) of its own per shim: other sessions on this machine run containers too
    made = iter(range(10 ** 6))
    return lambda args, terminal=False, binary=PYRUNC, memory_limit=None: make_shim(
        args, binary, f"lean{os.getpid()}-{next(made)}", terminal, memory_limit)


def _read(path, want, timeout=30):
    deadline = time.monotonic() + timeout
    while True:
        with open(path, "rb") as f:
            data = f.read()
        if want in data or time.monotonic() > deadline:
            return data
        time.sleep(0.05)


def _fifo(s, name):
    path = os.path.join(s.dir, name)
    os.mkfifo(path)
    return path


def _exec_spec(*args):
    spec = {"args": list(args), "cwd": "/", "env": ["PATH=/bin"], "user": {"uid": 0, "gid": 0}}
    return any_pb2.Any(type_url="types.containerd.io/opencontainers/runtime-spec/1/Process",
                       value=json.dumps(spec).encode())


def _assert_lean(s):
    maps = mapped_files(s.pid)
    assert not [m for m in maps if "_upb" in m or "google/protobuf" in m], "protobuf is loaded in the lean mode"
    with open(f"/proc/{s.pid}/cmdline", "rb") as f:
        argv = f.read().split(b"\0")
    assert argv[1] == b"-S" and argv[2].endswith(b"/pyrunc_shim/lean.py"), argv
    assert os.listdir(f"/proc/{s.pid}/task") == [str(s.pid)], "the lean mode runs one thread"


def test_every_request_wakes_the_full_mode_and_state_survives(env, binary):
    """Each request to a lean shim execs the full mode (same pid, same connection), which answers from
    the state the lean mode carried: status, pids, exec, pause/resume, kill, events in order."""
    s = env(["sh", "-c", "echo hello; exec sleep 1000"], binary=binary)
    out = os.path.join(s.dir, "out")
    pid = s.create(stdout="file://" + out)
    s.call("Start", shim_pb2.StartRequest(id=s.cid))
    assert b"hello" in _read(out, b"hello")
    full_rss = rss_kib(s.pid)
    assert any("_upb" in m for m in mapped_files(s.pid)), "the full mode should have protobuf mapped"
    s.wait_lean()
    _assert_lean(s)
    assert rss_kib(s.pid) < full_rss
    st = s.call("State", shim_pb2.StateRequest(id=s.cid))
    assert (st.status, st.pid) == (types_pb2.RUNNING, pid)
    assert s.mode() == "full"
    assert s.call("Connect", shim_pb2.ConnectRequest(id=s.cid)).shim_pid == s.pid  # still the same process
    assert [p.pid for p in s.call("Pids", shim_pb2.PidsRequest(id=s.cid)).processes] == [pid]

    s.wait_lean()
    exec_out = os.path.join(s.dir, "exec.out")
    s.call("Exec", shim_pb2.ExecProcessRequest(id=s.cid, exec_id="e1", stdout="file://" + exec_out,
                                               spec=_exec_spec("sh", "-c", "echo in-exec; exit 4")))
    s.call("Start", shim_pb2.StartRequest(id=s.cid, exec_id="e1"))
    assert s.call("Wait", shim_pb2.WaitRequest(id=s.cid, exec_id="e1")).exit_status == 4
    assert _read(exec_out, b"in-exec") == b"in-exec\n"
    s.wait_lean()
    assert s.call("Delete", shim_pb2.DeleteRequest(id=s.cid, exec_id="e1")).exit_status == 4

    s.wait_lean()
    s.call("Pause", shim_pb2.PauseRequest(id=s.cid))
    s.wait_lean()
    assert s.call("State", shim_pb2.StateRequest(id=s.cid)).status == types_pb2.PAUSED
    s.wait_lean()
    s.call("Resume", shim_pb2.ResumeRequest(id=s.cid))
    s.wait_lean()
    assert s.call("State", shim_pb2.StateRequest(id=s.cid)).status == types_pb2.RUNNING
    s.wait_lean()
    s.call("Kill", shim_pb2.KillRequest(id=s.cid, signal=9))
    assert s.call("Wait", shim_pb2.WaitRequest(id=s.cid)).exit_status == 137
    s.wait_lean()
    st = s.call("State", shim_pb2.StateRequest(id=s.cid))
    assert (st.status, st.exit_status) == (types_pb2.STOPPED, 137)
    d = s.call("Delete", shim_pb2.DeleteRequest(id=s.cid))
    assert (d.pid, d.exit_status) == (pid, 137)
    s.events.wait_for("/tasks/delete")
    assert s.events.topics() == ["/tasks/create", "/tasks/start", "/tasks/exec-added", "/tasks/exec-started",
                                 "/tasks/exit", "/tasks/paused", "/tasks/resumed", "/tasks/exit", "/tasks/delete"]


def test_wait_pending_across_lean_with_io_while_lean(env):
    """A Wait asked before the shim went lean is answered when the container exits while lean; what
    the container reads and writes meanwhile is copied by the lean mode itself (it stays lean)."""
    s = env(["sh", "-c", "read a; echo \"got $a\"; echo \"err $a\" >&2; read b; echo \"got $b\"; exit 3"])
    stdin = _fifo(s, "stdin")
    out, err = os.path.join(s.dir, "out"), _fifo(s, "stderr")
    s.create(stdin=stdin, stdout="file://" + out, stderr=err)
    err_r = os.open(err, os.O_RDONLY | os.O_NONBLOCK)
    s.call("Start", shim_pb2.StartRequest(id=s.cid))
    w = os.open(stdin, os.O_WRONLY)
    waited = []
    t = threading.Thread(target=lambda: waited.append(s.call("Wait", shim_pb2.WaitRequest(id=s.cid))))
    t.start()
    try:
        s.wait_lean()
        os.write(w, b"one\n")
        assert _read(out, b"got one") == b"got one\n"
        deadline = time.monotonic() + 10
        got_err = b""
        while b"\n" not in got_err and time.monotonic() < deadline:
            try:
                got_err += os.read(err_r, 100)
            except BlockingIOError:
                time.sleep(0.05)
        assert got_err == b"err one\n"
        _assert_lean(s)  # all of that went through the lean mode
        assert waited == []
        os.write(w, b"two\n")
        t.join(30)
        assert waited and waited[0].exit_status == 3
        assert _read(out, b"got two") == b"got one\ngot two\n"
    finally:
        os.close(w)
        os.close(err_r)
        t.join(60)
    s.events.wait_for("/tasks/exit")
    assert s.events.topics() == ["/tasks/create", "/tasks/start", "/tasks/exit"]


def test_early_exit_after_the_created_container_went_lean(env):
    """Created, lean, then Start of a process that exits at once: its exit may be reaped before
    Start has answered (by the full mode Start woke); TaskExit still comes, after TaskStart."""
    s = env(["sh", "-c", "exit 3"])
    s.create()
    s.wait_lean()
    assert s.call("State", shim_pb2.StateRequest(id=s.cid)).status == types_pb2.CREATED
    s.wait_lean()
    s.call("Start", shim_pb2.StartRequest(id=s.cid))
    assert s.call("Wait", shim_pb2.WaitRequest(id=s.cid)).exit_status == 3
    s.events.wait_for("/tasks/exit")
    assert s.events.topics() == ["/tasks/create", "/tasks/start", "/tasks/exit"]


def test_exec_exits_while_lean(env):
    """An exec'd process that outlives its Start: the shim goes lean, the exec writes and exits, and
    its Wait (asked before) gets the code with the output already out."""
    s = env(["sleep", "1000"])
    s.create()
    s.call("Start", shim_pb2.StartRequest(id=s.cid))
    stdin = _fifo(s, "exec.in")
    out = os.path.join(s.dir, "exec.out")
    s.call("Exec", shim_pb2.ExecProcessRequest(id=s.cid, exec_id="e1", stdin=stdin, stdout="file://" + out,
                                               spec=_exec_spec("sh", "-c", "read a; echo \"exec $a\"; exit 2")))
    s.call("Start", shim_pb2.StartRequest(id=s.cid, exec_id="e1"))
    w = os.open(stdin, os.O_WRONLY)
    waited = []
    t = threading.Thread(target=lambda: waited.append(s.call("Wait", shim_pb2.WaitRequest(id=s.cid, exec_id="e1"))))
    t.start()
    try:
        s.wait_lean()
        os.write(w, b"bye\n")
        t.join(30)
        assert waited and waited[0].exit_status == 2
        assert _read(out, b"exec bye") == b"exec bye\n"
    finally:
        os.close(w)
        t.join(60)
    assert s.call("State", shim_pb2.StateRequest(id=s.cid)).status == types_pb2.RUNNING  # the container lives on


def test_fast_writer_across_transitions(env, monkeypatch):
    """A container writing 1.2 million numbered lines in bursts while the shim goes lean and back again
    and again (each State call wakes it; idle after 0.3 s here instead of LEAN_AFTER), to a fifo whose
    reader pauses now and then (so chunks are still pending at some transitions): every line
    arrives, once, in order."""
    monkeypatch.setenv("PYRUNC_SHIM_LEAN_AFTER", "0.3")
    n, burst = 1200000, 20000
    s = env(["sh", "-c", f"i=0; while [ $i -lt {n // burst} ]; do seq $((i*{burst})) $((i*{burst}+{burst - 1})); "
             f"i=$((i+1)); sleep 0.2; done; echo done >&2"])
    fifo = _fifo(s, "stdout")
    err = os.path.join(s.dir, "err")
    r = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    s.create(stdout=fifo, stderr="file://" + err)
    got = bytearray()
    stop = threading.Event()

    def reader():
        rnd = random.Random(7)
        while not stop.is_set():
            try:
                got.extend(os.read(r, 16384))
            except BlockingIOError:
                time.sleep(0.005)
            if rnd.random() < 0.01:
                time.sleep(0.5)  # the fifo fills up: the shim keeps a chunk pending
    t = threading.Thread(target=reader)
    t.start()
    waited = []
    try:
        s.call("Start", shim_pb2.StartRequest(id=s.cid))
        waiter = threading.Thread(target=lambda: waited.append(s.call("Wait", shim_pb2.WaitRequest(id=s.cid))))
        waiter.start()
        leans = 0
        while not waited:
            try:
                s.wait_lean(timeout=5)
            except AssertionError:
                continue
            leans += 1
            s.call("State", shim_pb2.StateRequest(id=s.cid))
        waiter.join()
        assert waited[0].exit_status == 0
        assert leans >= 10, f"only {leans} lean periods while the container wrote"
        deadline = time.monotonic() + 30
        want = "".join(f"{i}\n" for i in range(n)).encode()
        while len(got) < len(want) and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        stop.set()
        t.join()
        os.close(r)
    assert len(got) == len(want) and got == want, f"{len(got)} bytes of {len(want)}; first difference at " \
        f"{next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))}"
    assert _read(err, b"done") == b"done\n"


def test_terminal_resize_and_input_while_lean(env):
    s = env(["sh", "-c", "read a; stty size; read b; echo \"bye $b\"; exit 0"], terminal=True)
    stdin = _fifo(s, "stdin")
    out = os.path.join(s.dir, "tty.out")
    s.create(stdin=stdin, stdout="file://" + out, terminal=True)
    s.call("Start", shim_pb2.StartRequest(id=s.cid))
    w = os.open(stdin, os.O_WRONLY)
    try:
        s.wait_lean()
        s.call("ResizePty", shim_pb2.ResizePtyRequest(id=s.cid, width=91, height=37))
        s.wait_lean()
        os.write(w, b"x\n")  # to the pty master, by the lean mode
        assert b"37 91" in _read(out, b"37 91")
        _assert_lean(s)
        os.write(w, b"now\n")
        assert s.call("Wait", shim_pb2.WaitRequest(id=s.cid)).exit_status == 0
        assert b"bye now" in _read(out, b"bye now")
    finally:
        os.close(w)


def test_client_disconnect_and_reconnect_while_lean(env):
    s = env(["sleep", "1000"])
    s.create()
    s.call("Start", shim_pb2.StartRequest(id=s.cid))
    s.wait_lean()
    s.client.close()  # containerd goes away while the shim is lean: it wakes, sees the hang-up, goes lean again
    s.wait_lean()
    s.client = Client(s.address, timeout=120)
    assert s.call("State", shim_pb2.StateRequest(id=s.cid)).status == types_pb2.RUNNING
    waited = []
    t = threading.Thread(target=lambda: waited.append(s.call("Wait", shim_pb2.WaitRequest(id=s.cid))))
    t.start()
    s.wait_lean()
    other = Client(s.address, timeout=120)  # a second client connects while lean
    try:
        other.call("containerd.task.v2.Task", "Kill", shim_pb2.KillRequest(id=s.cid, signal=9),
                   empty_pb2.Empty,
                   metadata={"containerd-namespace-ttrpc": "pyrunc-test"})
        t.join(30)
        assert waited and waited[0].exit_status == 137  # answered on the first client's connection
    finally:
        other.close()
        t.join(60)


def test_oom_while_lean(env):
    """An OOM kill in the container while the shim is lean reaches containerd as TaskOOM."""
    s = env(["sh", "-c", "read a; dd if=/dev/zero of=/dev/null bs=64M count=1; echo after; exec sleep 1000"],
            memory_limit=16 << 20)
    stdin = _fifo(s, "stdin")
    out = os.path.join(s.dir, "out")
    s.create(stdin=stdin, stdout="file://" + out)
    s.call("Start", shim_pb2.StartRequest(id=s.cid))
    w = os.open(stdin, os.O_WRONLY)
    try:
        s.wait_lean()
        os.write(w, b"go\n")
        s.events.wait_for("/tasks/oom")
        assert b"after" in _read(out, b"after")
    finally:
        os.close(w)
    assert s.events.topics() == ["/tasks/create", "/tasks/start", "/tasks/oom"]
