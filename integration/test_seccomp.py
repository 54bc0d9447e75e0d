"""linux.seccomp, asserted from inside the container with a static probe making the raw calls.

Every test here is runtime-agnostic: PYRUNC_TEST_RUNTIME=/usr/sbin/runc must pass them too.
The container gets CAP_SYS_ADMIN and friends, so that a refused call is the filter's doing and not a
missing capability (the baseline test proves the calls work without the filter).
"""
import errno
import fcntl
import os
import select
import socket
import struct
import threading

import pytest

from integration.helpers.probe import install
from integration.helpers.seccomp_profiles import docker_shaped

EXTRA_CAPS = ["CAP_SYS_ADMIN", "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_AUDIT_WRITE", "CAP_KILL",
              "CAP_NET_BIND_SERVICE", "CAP_SETUID", "CAP_SETGID"]
SIGSYS_STATUS = 128 + 31


def _config(runtime, script, seccomp=None, nnp=True):
    config = runtime.config(["sh", "-c", script])
    caps = config["process"]["capabilities"]
    for field in ("bounding", "effective", "permitted"):
        caps[field] = list(EXTRA_CAPS)
    caps.pop("ambient", None)
    config["process"]["noNewPrivileges"] = nnp
    if seccomp is not None:
        config["linux"]["seccomp"] = seccomp
    return config


def _run(runtime, probe_binary, script, seccomp=None, nnp=True):
    c = runtime.bundle(_config(runtime, script, seccomp, nnp))
    install(probe_binary, c.rootfs)
    cp = c.run(check=False)
    assert cp.returncode == 0, cp.stdout + cp.stderr
    return dict(line.split("=", 1) for line in cp.stdout.split() if "=" in line)


CALLS = "unshare mount keyctl ptrace getpid personality-query personality-bad"


def test_baseline_calls_work_without_a_filter(runtime, probe_binary):
    out = _run(runtime, probe_binary, f"probe sys {CALLS}")
    for name in CALLS.split():
        assert out[name] == "ok", f"{name} fails even without seccomp: {out}"


def test_docker_shaped_profile_blocks_with_configured_errno(runtime, probe_binary):
    out = _run(runtime, probe_binary, f"probe sys {CALLS}", docker_shaped())
    assert out["unshare"] == str(errno.EPERM)
    assert out["mount"] == str(errno.EPERM)
    assert out["ptrace"] == str(errno.EPERM)
    assert out["keyctl"] == str(errno.ENOSYS)  # explicit errnoRet
    assert out["getpid"] == "ok"
    assert out["personality-query"] == "ok"  # allowed by an argument condition
    assert out["personality-bad"] == str(errno.EPERM)  # not matched by any condition


def test_filter_mode_visible_in_status(runtime, probe_binary):
    c = runtime.bundle(_config(runtime, "grep -E '^Seccomp' /proc/self/status", docker_shaped()))
    cp = c.run()
    fields = dict(line.replace("\t", "").split(":", 1) for line in cp.stdout.splitlines())
    assert fields["Seccomp"] == "2", cp.stdout  # SECCOMP_MODE_FILTER


@pytest.mark.parametrize("action", ["SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD",
                                    "SCMP_ACT_TRAP"])
def test_kill_and_trap_rules_kill(runtime, probe_binary, action):
    seccomp = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["acct"], "action": action}]}
    out = _run(runtime, probe_binary, "probe sys getpid acct; echo status=$?", seccomp)
    assert out["getpid"] == "ok"
    assert "acct" not in out, f"acct returned under {action}: {out}"
    assert out["status"] == str(SIGSYS_STATUS), out


def test_errno_trace_log_actions(runtime, probe_binary):
    seccomp = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["unshare"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.EXDEV},
        {"names": ["mount"], "action": "SCMP_ACT_ERRNO"},  # no errnoRet: EPERM
        {"names": ["keyctl"], "action": "SCMP_ACT_TRACE"},  # no tracer attached: ENOSYS
        {"names": ["ptrace"], "action": "SCMP_ACT_LOG"},  # allowed, and logged
    ]}
    out = _run(runtime, probe_binary, "probe sys unshare mount keyctl ptrace", seccomp)
    assert out == {"unshare": str(errno.EXDEV), "mount": str(errno.EPERM), "keyctl": str(errno.ENOSYS),
                   "ptrace": "ok"}


def test_default_errno_ret(runtime, probe_binary):
    seccomp = docker_shaped()
    seccomp["defaultErrnoRet"] = errno.EACCES
    out = _run(runtime, probe_binary, "probe sys unshare getpid", seccomp)
    assert out == {"unshare": str(errno.EACCES), "getpid": "ok"}


@pytest.mark.runc_lacks("runc 1.1.5: 'seccomp flags are not yet supported by runc'")
def test_filter_flags(runtime, probe_binary):
    """LOG and SPEC_ALLOW change only what the kernel logs and its SSB mitigation: the filter is in
    force with them, and TSYNC is accepted (init is single-threaded)."""
    seccomp = docker_shaped()
    seccomp["flags"] = ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_TSYNC"]
    out = _run(runtime, probe_binary, "probe sys unshare getpid", seccomp)
    assert out == {"unshare": str(errno.EPERM), "getpid": "ok"}


def test_argument_conditions_on_one_argument_are_alternatives(runtime, probe_binary):
    """Two conditions on the same argument in one rule: runc adds one rule per condition (OR)."""
    seccomp = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.EXDEV,
         "args": [{"index": 0, "value": 0x0020000, "op": "SCMP_CMP_EQ"},
                  {"index": 0, "value": 0x0040000, "op": "SCMP_CMP_EQ"}]},
        {"names": ["sethostname"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.EXDEV,
         "args": [{"index": 1, "value": 5, "op": "SCMP_CMP_EQ"},
                  {"index": 0, "value": 0, "op": "SCMP_CMP_NE"}]},  # distinct args: ANDed
    ]}
    out = _run(runtime, probe_binary, "probe sys personality-bad personality-query sethostname", seccomp)
    assert out == {"personality-bad": str(errno.EXDEV), "personality-query": "ok",
                   "sethostname": str(errno.EXDEV)}


def test_filter_without_no_new_privileges_for_unprivileged_user(runtime, probe_binary):
    """Without noNewPrivileges the filter needs CAP_SYS_ADMIN to load, so it goes in before the user
    switch; the process still runs as uid 1000 under it."""
    seccomp = {"defaultAction": "SCMP_ACT_ALLOW",
               "syscalls": [{"names": ["unshare"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.EXDEV}]}
    config = _config(runtime, "probe ids | sed 's/^/ids=/;s/ /,/g'; probe sys unshare", seccomp, nnp=False)
    config["process"]["user"] = {"uid": 1000, "gid": 1000}
    c = runtime.bundle(config)
    install(probe_binary, c.rootfs)
    out = dict(line.split("=", 1) for line in c.run().stdout.split())
    assert out["ids"] == "1000,1000,1000,1000"
    assert out["unshare"] == str(errno.EXDEV)


# --- SCMP_ACT_NOTIFY: a seccomp agent in this test process -----------------------------------------

_NOTIF = struct.Struct("=QII" + "iIQ" + "6Q")  # struct seccomp_notif: id, pid, flags, seccomp_data
_RESP = struct.Struct("=QqiI")                 # struct seccomp_notif_resp: id, val, error, flags
_IOCTL_RECV = 0xC0502100                       # SECCOMP_IOCTL_NOTIF_RECV
_IOCTL_SEND = 0xC0182101                       # SECCOMP_IOCTL_NOTIF_SEND


class Agent:
    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(1)
        self.sock.settimeout(60)
        self.state, self.fds, self.syscall_nr, self.error = None, [], None, None
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        try:
            conn, _ = self.sock.accept()
            with conn:
                msg, fds, _, _ = socket.recv_fds(conn, 65536, 4)
            import json
            self.state, self.fds = json.loads(msg), fds
            listener = fds[0]
            r, _, _ = select.select([listener], [], [], 60)
            assert r, "no notification within 60s"
            buf = bytearray(_NOTIF.size)
            fcntl.ioctl(listener, _IOCTL_RECV, buf)
            fields = _NOTIF.unpack(buf)
            self.syscall_nr = fields[3]
            fcntl.ioctl(listener, _IOCTL_SEND, bytearray(_RESP.pack(fields[0], 0, -errno.EXDEV, 0)))
        except BaseException as e:  # reported by the test
            self.error = e
        finally:
            for fd in self.fds:
                os.close(fd)
            self.sock.close()


def test_notify_sends_state_and_listener_to_agent(runtime, probe_binary, tmp_path):
    path = str(tmp_path / "agent.sock")
    agent = Agent(path)
    seccomp = {"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": path, "listenerMetadata": "pyrunc-test",
               "syscalls": [{"names": ["swapoff"], "action": "SCMP_ACT_NOTIFY"}]}
    config = _config(runtime, "probe sys getpid swapoff > /shared/o.tmp; mv /shared/o.tmp /shared/out", seccomp)
    c = runtime.bundle(config, shared=True)
    install(probe_binary, c.rootfs)
    c.create()
    state = c.state()
    agent.thread.join(0)  # the state arrives during create
    c.start()
    agent.thread.join(60)
    assert agent.error is None, agent.error
    assert agent.state["fds"] == ["seccompFd"] and len(agent.fds) == 1
    assert agent.state["metadata"] == "pyrunc-test"
    assert agent.state["pid"] == state["pid"]
    assert agent.state["state"]["id"] == c.id and agent.state["state"]["status"] == "creating"
    assert agent.state["state"]["bundle"] == c.bundle
    import platform
    assert platform.machine() != "x86_64" or agent.syscall_nr == 168  # swapoff on x86_64
    assert c.read("out").split() == ["getpid=ok", f"swapoff={errno.EXDEV}"]  # the agent's answer
