"""linux.seccomp.flags, each asserted from inside the container where the kernel lets us see it.

- every flag: the filter is loaded with it (Seccomp: 2, Seccomp_filters: 1 in /proc/self/status) and
  in force (a refused call is refused);
- SECCOMP_FILTER_FLAG_LOG: the kernel logs the actions it would not log otherwise (an ERRNO
  return), visible as AUDIT_SECCOMP records on the audit netlink multicast group; without the
  flag only SCMP_ACT_LOG/KILL are logged;
- not observable here: SPEC_ALLOW (this host's CPU reports the SSB mitigation as off, so the
  filter cannot change Speculation_Store_Bypass), TSYNC (init is single-threaded: there is no other
  thread to synchronise), WAIT_KILLABLE_RECV (needs libseccomp 2.6; this host has 2.5.4, where
  pyrunc refuses it by name rather than ignore it).
runc 1.1.5 refuses every flag ("seccomp flags are not yet supported by runc"): runc_lacks.
"""
import errno
import time
import uuid

import pytest

from integration.helpers.probe import install
from integration.test_seccomp import _config

LACKS = pytest.mark.runc_lacks("runc 1.1.5: 'seccomp flags are not yet supported by runc'")
NR_PTRACE, NR_UNSHARE = 101, 272  # x86_64


def _filter(flags):
    return {"defaultAction": "SCMP_ACT_ALLOW", "flags": flags, "syscalls": [
        {"names": ["ptrace"], "action": "SCMP_ACT_LOG"},
        {"names": ["unshare"], "action": "SCMP_ACT_ERRNO"},
    ]}


@LACKS
@pytest.mark.parametrize("flag", ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
                                  "SECCOMP_FILTER_FLAG_TSYNC"])
def test_filter_loads_with_each_flag(runtime, probe_binary, flag):
    config = _config(runtime, "grep -E '^Seccomp(_filters)?:' /proc/self/status | tr -d '\\t'; "
                              "probe sys unshare ptrace", _filter([flag]))
    c = runtime.bundle(config)
    install(probe_binary, c.rootfs)
    out = c.run().stdout.split()
    assert out == ["Seccomp:2", "Seccomp_filters:1", f"unshare={errno.EPERM}", "ptrace=ok"], out


@pytest.mark.pyrunc_only
def test_flag_this_libseccomp_lacks_is_an_error(runtime, probe_binary):
    from integration.helpers.runtime import execute
    version = execute(["dpkg-query", "-W", "-f", "${Version}", "libseccomp2"]).stdout
    if not version.startswith("2.5."):
        pytest.fail(f"libseccomp2 {version}: WAIT_KILLABLE_RECV may be supported; rewrite this test")
    c = runtime.bundle(_config(runtime, "true", _filter(["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"])))
    cp = c.create(check=False)
    assert cp.returncode == 1
    assert "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV" in cp.stderr and "libseccomp" in cp.stderr, cp.stderr
    assert c.leftovers() == []


class AuditLog:
    """Audit records from now on, read from the kernel's audit multicast group (what journald and
    auditd read; unlike the printk copy in /dev/kmsg it is not rate-limited)."""

    def __init__(self):
        import socket
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_NONBLOCK, 9)  # NETLINK_AUDIT
        self.sock.bind((0, 1))  # AUDIT_NLGRP_READLOG
        self.records = []

    def drain(self):
        import struct
        while True:
            try:
                data = self.sock.recv(65536)
            except BlockingIOError:
                return self.records
            while len(data) >= 16:
                length, kind = struct.unpack_from("=IH", data)
                if kind == 1326:  # AUDIT_SECCOMP
                    self.records.append(data[16:length].decode(errors="replace"))
                data = data[(length + 3) & ~3:]

    def seccomp(self, comm):
        """(syscall, action code) of the seccomp audit records of processes named comm."""
        found = []
        for r in self.drain():
            if f'comm="{comm}"' in r:
                fields = dict(f.split("=", 1) for f in r.split() if "=" in f)
                found.append((int(fields["syscall"]), int(fields["code"], 16)))
        return found

    def close(self):
        self.sock.close()


def _logged(runtime, probe_binary, flags):
    """Run ptrace (LOG) then unshare (ERRNO); return what the kernel logged for this probe."""
    comm = "sf" + uuid.uuid4().hex[:10]
    c = runtime.bundle(_config(runtime, f"{comm} sys ptrace unshare", _filter(flags)))
    install(probe_binary, c.rootfs, name=comm)
    log = AuditLog()
    try:
        out = c.run().stdout.split()
        assert out == ["ptrace=ok", f"unshare={errno.EPERM}"], out
        deadline = time.monotonic() + 15
        while not any(nr == NR_PTRACE for nr, _ in log.seccomp(comm)):
            assert time.monotonic() < deadline, \
                "no seccomp audit record of SCMP_ACT_LOG: cannot observe logging on this host"
            time.sleep(0.05)
        time.sleep(0.5)  # the ERRNO record, if any, follows the LOG record
        return log.seccomp(comm)
    finally:
        log.close()


@LACKS
def test_log_flag_logs_errno_actions(runtime, probe_binary):
    with_flag = _logged(runtime, probe_binary, ["SECCOMP_FILTER_FLAG_LOG"])
    assert (NR_UNSHARE, 0x00050000) in with_flag, with_flag  # SECCOMP_RET_ERRNO, logged
    without = _logged(runtime, probe_binary, [])
    assert (NR_PTRACE, 0x7FFC0000) in without  # SCMP_ACT_LOG is always logged
    assert not [r for r in without if r[0] == NR_UNSHARE], without
