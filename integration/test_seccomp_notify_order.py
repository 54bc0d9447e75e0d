"""SCMP_ACT_NOTIFY in runc's order: the listener reaches the agent right after the filter is loaded,
before the runtime's own last calls run under it, so a notifying rule on a call init itself makes
(openat: /etc/passwd, exec.fifo) is answered instead of blocking create for ever; and `exec` hands
its own listener over the same way (state "running", pid the exec'd process's)."""
import errno
import fcntl
import json
import os
import select
import socket
import struct
import threading

import pytest

from integration.helpers.probe import install

_NOTIF = struct.Struct("=QII" + "iIQ" + "6Q")  # struct seccomp_notif: id, pid, flags, seccomp_data
_RESP = struct.Struct("=QqiI")                 # struct seccomp_notif_resp: id, val, error, flags
_IOCTL_RECV = 0xC0502100                       # SECCOMP_IOCTL_NOTIF_RECV
_IOCTL_SEND = 0xC0182101                       # SECCOMP_IOCTL_NOTIF_SEND
_FLAG_CONTINUE = 1                             # SECCOMP_USER_NOTIF_FLAG_CONTINUE
_SWAPOFF = 168                                 # x86_64


class Agent:
    """Accepts every connection on path; answers each notification: swapoff with EXDEV, anything else
    by letting the call go on (CONTINUE). Records each connection's state and the calls seen."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(4)
        self.states, self.calls, self.errors = [], [], []
        self.stop_r, self.stop_w = os.pipe()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        listeners = []
        try:
            poller = select.poll()
            poller.register(self.sock.fileno(), select.POLLIN)
            poller.register(self.stop_r, select.POLLIN)
            while True:
                for fd, ev in poller.poll(60000):
                    if fd == self.stop_r:
                        return
                    if fd == self.sock.fileno():
                        conn, _ = self.sock.accept()
                        with conn:
                            msg, fds, _, _ = socket.recv_fds(conn, 65536, 4)
                        self.states.append(json.loads(msg))
                        listeners += fds
                        poller.register(fds[0], select.POLLIN)
                    elif ev & select.POLLIN:
                        self._answer(fd)
                    else:  # every filtered process is gone
                        poller.unregister(fd)
        except BaseException as e:  # reported by the test
            self.errors.append(e)
        finally:
            for fd in listeners:
                os.close(fd)

    def _answer(self, listener):
        buf = bytearray(_NOTIF.size)
        try:
            fcntl.ioctl(listener, _IOCTL_RECV, buf)
        except OSError:  # the caller was killed meanwhile
            return
        fields = _NOTIF.unpack(buf)
        self.calls.append(fields[3])
        if fields[3] == _SWAPOFF:
            resp = _RESP.pack(fields[0], 0, -errno.EXDEV, 0)
        else:
            resp = _RESP.pack(fields[0], 0, 0, _FLAG_CONTINUE)
        try:
            fcntl.ioctl(listener, _IOCTL_SEND, bytearray(resp))
        except OSError:
            pass

    def close(self):
        os.write(self.stop_w, b"x")
        self.thread.join(30)
        for fd in (self.stop_r, self.stop_w):
            os.close(fd)
        self.sock.close()
        assert not self.errors, self.errors


@pytest.fixture
def agent(tmp_path):
    a = Agent(str(tmp_path / "agent.sock"))
    a.path = str(tmp_path / "agent.sock")
    yield a
    a.close()


def _seccomp(agent, names):
    return {"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": agent.path,
            "syscalls": [{"names": names, "action": "SCMP_ACT_NOTIFY"}]}


@pytest.mark.parametrize("nnp", [False, True], ids=["early-filter", "nnp"])
def test_notify_on_a_call_init_makes(runtime, agent, nnp):
    """openat notifies: init opens /etc/passwd (HOME) and exec.fifo after the filter is in."""
    config = runtime.config(["sh", "-c", "cat /etc/passwd >/dev/null && echo opened"])
    config["process"]["noNewPrivileges"] = nnp
    config["process"]["env"] = [e for e in config["process"]["env"] if not e.startswith("HOME=")]
    config["linux"]["seccomp"] = _seccomp(agent, ["openat"])
    c = runtime.bundle(config)
    cp = c.run(check=False, timeout=30)
    assert (cp.returncode, cp.stdout) == (0, "opened\n"), cp.stderr
    assert len(agent.states) == 1 and agent.states[0]["state"]["status"] == "creating"
    assert agent.calls, "no openat reached the agent"


def test_exec_notify(runtime, agent, probe_binary):
    """runc's exec: the exec'd process's listener goes to the agent, state "running" with the init's
    pid, the message's pid the exec'd process's; its notified call gets the agent's answer."""
    config = runtime.config(["sleep", "1000"])
    config["process"]["capabilities"]["bounding"].append("CAP_SYS_ADMIN")
    config["linux"]["seccomp"] = _seccomp(agent, ["swapoff"])
    c = runtime.container(config, create=False)
    install(probe_binary, c.rootfs)
    c.create()
    c.start()
    cp = runtime.run("exec", "--cap", "CAP_SYS_ADMIN", c.id, "probe", "sys", "swapoff", check=False, timeout=30)
    assert (cp.returncode, cp.stdout.strip()) == (0, f"swapoff={errno.EXDEV}"), cp.stderr
    assert [s["state"]["status"] for s in agent.states] == ["creating", "running"]
    exec_state = agent.states[1]
    assert exec_state["state"]["pid"] == c.pid and exec_state["pid"] != c.pid
    assert exec_state["state"]["id"] == c.id and exec_state["fds"] == ["seccompFd"]
    c.kill("KILL")
    c.wait_status("stopped")
    c.delete()


def test_agent_gone_fails_cleanly(runtime, tmp_path):
    """No agent at listenerPath: create fails naming it and leaves nothing (runtime fixture checks);
    exec into a container whose agent has gone fails the same way and the container lives on."""
    path = str(tmp_path / "nobody.sock")
    config = runtime.config(["true"])
    config["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": path,
                                  "syscalls": [{"names": ["swapoff"], "action": "SCMP_ACT_NOTIFY"}]}
    c = runtime.container(config, create=False)
    cp = c.create(check=False, timeout=30)
    assert cp.returncode != 0 and path in cp.stderr, cp
    assert c.leftovers() == []

    agent = Agent(str(tmp_path / "agent.sock"))
    agent.path = str(tmp_path / "agent.sock")
    try:
        config = runtime.config(["sleep", "1000"])
        config["linux"]["seccomp"] = _seccomp(agent, ["swapoff"])
        c = runtime.container(config)
    finally:
        agent.close()  # the socket file stays, nobody listens: connect is refused
    c.start()
    cp = runtime.run("exec", c.id, "true", check=False, timeout=30)
    assert cp.returncode != 0 and agent.path in cp.stderr, cp
    assert c.status == "running"
    c.kill("KILL")
    c.wait_status("stopped")
    c.delete()
