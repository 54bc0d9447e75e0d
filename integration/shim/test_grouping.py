"""One shim per pod, as containerd's runc shim: `start` of each container whose spec carries the
pod's io.kubernetes.cri.sandbox-id (or io.containerd.runc.v2.group) prints the address of the
shim already serving that pod; that one process runs every container of the pod (each through
its own connection, as containerd connects per task), goes lean with all of them, and exits only
after the last one is deleted."""
import os
import tempfile
import time

import pytest

from integration.shim.conftest import PYRUNC
from integration.shim.shimclient import shim_mode, wait_mode
from pyrunc_shim.pb.containerd import shim_pb2, types_pb2

SANDBOX = "io.kubernetes.cri.sandbox-id"


@pytest.fixture
def pod(make_shim, tmp_path):
    """make(cid, args, annotations, memory_limit, host_pid) -> a started Shim for that container;
    all grouped under one private containerd address (so the socket names are this test's own)."""
    address = str(tmp_path / "containerd.sock")  # never listened on: only names the sockets
    return lambda cid, args, annotations=None, memory_limit=None, host_pid=False: make_shim(
        args, PYRUNC, cid, memory_limit=memory_limit, annotations=annotations, host_pid=host_pid,
        containerd_address=address)


def _uid(name):
    return f"{name}{os.getpid()}-{time.monotonic_ns() % 10 ** 9}"


def _run(s, out=None):
    s.create(stdout="file://" + out if out else "")
    s.call("Start", shim_pb2.StartRequest(id=s.cid))


def test_a_pods_containers_share_one_shim_until_the_last_delete(pod):
    sandbox_id = _uid("pod")
    sandbox = pod(_uid("sandbox"), ["sleep", "1000"], {SANDBOX: sandbox_id})
    app = pod(_uid("app"), ["sleep", "1000"], {SANDBOX: sandbox_id})
    other = pod(_uid("other"), ["sleep", "1000"], {SANDBOX: _uid("pod")})
    plain = pod(_uid("plain"), ["sleep", "1000"])
    assert app.address == sandbox.address and app.pid == sandbox.pid
    assert len({sandbox.address, other.address, plain.address}) == 3
    for s in (sandbox, app):
        _run(s)
        with open(os.path.join(s.bundle, "address")) as f:  # what containerd reloads after a restart
            assert f.read() == sandbox.address
    # each connection sees its own container
    assert app.call("State", shim_pb2.StateRequest(id=app.cid)).status == types_pb2.RUNNING
    assert sandbox.call("Connect", shim_pb2.ConnectRequest(id=app.cid)).task_pid == \
        app.call("State", shim_pb2.StateRequest(id=app.cid)).pid
    with pytest.raises(Exception, match="already exists"):
        app.create()

    # the sandbox goes first: the shim stays for the app, whose requests still work
    sandbox.call("Kill", shim_pb2.KillRequest(id=sandbox.cid, signal=9))
    assert sandbox.call("Wait", shim_pb2.WaitRequest(id=sandbox.cid)).exit_status == 137
    sandbox.call("Delete", shim_pb2.DeleteRequest(id=sandbox.cid))
    sandbox.call("Shutdown", shim_pb2.ShutdownRequest(id=sandbox.cid))
    time.sleep(0.3)
    assert shim_mode(app.pid) and os.path.exists(app.socket)
    with pytest.raises(Exception, match="not found"):
        app.call("State", shim_pb2.StateRequest(id=sandbox.cid))
    assert app.call("State", shim_pb2.StateRequest(id=app.cid)).status == types_pb2.RUNNING

    app.call("Kill", shim_pb2.KillRequest(id=app.cid, signal=9))
    app.call("Wait", shim_pb2.WaitRequest(id=app.cid))
    app.call("Delete", shim_pb2.DeleteRequest(id=app.cid))
    app.call("Shutdown", shim_pb2.ShutdownRequest(id=app.cid))
    deadline = time.monotonic() + 30
    while shim_mode(app.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not shim_mode(app.pid) and not os.path.exists(app.socket)
    assert shim_mode(other.pid) and shim_mode(plain.pid)  # the other pods' shims are untouched


def test_lean_mode_serves_every_container_of_the_pod(pod):
    """Idle with three containers (one writing, one reading nothing, one that will OOM): the lean
    mode copies the writer's output, wakes for an exit and an OOM of any of them, and every
    container is there again in the full mode."""
    sandbox_id = _uid("pod")
    d = tempfile.mkdtemp(prefix="pyrunc-shim-podout-")
    try:
        sandbox = pod(_uid("sandbox"), ["sleep", "1000"], {SANDBOX: sandbox_id})
        writer = pod(_uid("writer"), ["sh", "-c", "i=0; while [ $i -lt 40 ]; do echo line$i; i=$((i+1)); "
                                      "sleep 0.1; done; exec sleep 1000"], {SANDBOX: sandbox_id})
        oomer = pod(_uid("oomer"), ["sh", "-c", "sleep 3; dd if=/dev/zero of=/dev/null bs=64M count=1; "
                                    "exec sleep 1000"], {SANDBOX: sandbox_id}, memory_limit=16 << 20)
        quitter = pod(_uid("quitter"), ["sh", "-c", "sleep 4; exit 7"], {SANDBOX: sandbox_id})
        assert len({s.pid for s in (sandbox, writer, oomer, quitter)}) == 1
        out = os.path.join(d, "writer.out")
        for s in (sandbox, writer, oomer, quitter):
            _run(s, out if s is writer else None)
        wait_mode(sandbox.pid, "lean")
        # woken by the OOM and by the exit (events go through the connection each container's
        # Create came on: the shim publishes on one events address, the first start's)
        sandbox.events.wait_for("/tasks/oom")
        sandbox.events.wait_for("/tasks/exit")
        assert quitter.call("Wait", shim_pb2.WaitRequest(id=quitter.cid)).exit_status == 7
        wait_mode(sandbox.pid, "lean")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with open(out) as f:
                if "line39\n" in f.read():
                    break
            time.sleep(0.1)
        with open(out) as f:
            assert f.read() == "".join(f"line{i}\n" for i in range(40))
        for s in (sandbox, writer, oomer):
            assert s.call("State", shim_pb2.StateRequest(id=s.cid)).status == types_pb2.RUNNING
    finally:
        import shutil
        shutil.rmtree(d, ignore_errors=True)


def test_processes_left_by_an_init_without_its_own_pid_namespace_are_killed(pod):
    """As containerd's runc shim (ShouldKillAllOnExit): when the init of a container that shares a
    pid namespace exits, what it started is killed at once, before the exit is told (not at Delete)."""
    s = pod(_uid("leaver"), ["sh", "-c", "sleep 1000 & exit 3"], host_pid=True)
    _run(s)
    assert s.call("Wait", shim_pb2.WaitRequest(id=s.cid)).exit_status == 3
    deadline = time.monotonic() + 2  # SIGKILL sent before the exit was told; its delivery may lag
    while True:
        left = []
        for p in os.listdir("/proc"):
            try:
                with open(f"/proc/{p}/cgroup") as f:
                    if f"/{s.cid}\n" in f.read():  # in the container's cgroup
                        with open(f"/proc/{p}/stat") as st:
                            if st.read().rsplit(")", 1)[1].split()[0] != "Z":
                                left.append(p)
            except OSError:
                pass
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert not left, f"the init's child {left} outlived it"


def test_a_failed_start_leaves_no_socket(tmp_path):
    """Options on stdin beyond the bound: start fails with the reason and no server, and the
    socket it had bound is gone (a later start must not find a name nobody answers on)."""
    import subprocess
    from integration.shim.containerd import VENV_BIN
    from integration.helpers.bundle import config_for, make_bundle
    bundle = tmp_path / "b"
    make_bundle(str(bundle), config=config_for(["true"]))
    sock = tmp_path / "s.sock"
    cp = subprocess.run([os.path.join(VENV_BIN, "containerd-shim-pyrunc-v2"), "-namespace", "n", "-id", "x",
                         "-address", "/nonexistent", "-socket", str(sock), "start"], cwd=bundle,
                        input=b"\0" * ((1 << 20) + 1), capture_output=True, timeout=60)
    assert cp.returncode == 2 and b"larger than 1048576 bytes" in cp.stderr and cp.stdout == b"", cp
    assert not sock.exists() and not (bundle / "address").exists()
