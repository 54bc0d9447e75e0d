"""fd passing and notification: --preserve-fds with systemd socket activation (LISTEN_FDS/LISTEN_PID)
for run and exec, and NOTIFY_SOCKET passthrough (the container's sd_notify reaches the caller)."""
import os
import socket
import time

import pytest

from integration.helpers.probe import install
from integration.helpers.runtime import assert_no_traceback, describe, execute

# The caller holds fds 3 and 4 as systemd would hand them over (LISTEN_PID = the runtime's own pid,
# which `exec` keeps), and fd 5 as one more to preserve.
_ACTIVATED = 'exec 3<"$1" 4<"$2" 5<"$3"; shift 3; export LISTEN_FDS=2 LISTEN_PID=$$; exec "$@"'


def _objects(tmp_path):
    files = []
    for name in ("listen-a", "listen-b", "extra"):
        path = tmp_path / name
        path.write_text(name)
        files.append(str(path))
    return files


def _activated(runtime, files, *args):
    cp = execute(["sh", "-c", _ACTIVATED, "sh", *files] + runtime.argv(*args))
    assert_no_traceback(cp)
    assert cp.returncode == 0, describe(cp)
    return cp.stdout


def _parse_fds(out):
    head, *lines = out.strip().splitlines()
    info = dict(field.split("=", 1) for field in head.split())
    fds = {}
    for line in lines:
        fd, ident, _ = (line.split(" ", 2) + [""])[:3]
        fds[int(fd)] = ident
    return info, fds


def _ident(path):
    st = os.stat(path)
    return f"{st.st_dev}:{st.st_ino}"


def _check(out, files, listen_pid):
    info, fds = _parse_fds(out)
    assert info["LISTEN_FDS"] == "2", out
    assert info["LISTEN_PID"] == listen_pid(info), out
    assert sorted(fds) == [0, 1, 2, 3, 4, 5], f"exactly stdio + 2 listen fds + 1 preserved fd:\n{out}"
    assert [fds[3], fds[4], fds[5]] == [_ident(f) for f in files], out
    return info


def test_run_passes_listen_fds_then_preserved_fds(runtime, probe_binary, tmp_path):
    c = runtime.bundle(["/bin/probe", "fds"])
    install(probe_binary, c.rootfs)
    files = _objects(tmp_path)
    out = _activated(runtime, files, "run", "--bundle", c.bundle, "--preserve-fds", "1", c.id)
    assert _check(out, files, lambda info: "1")["pid"] == "1"


@pytest.mark.runc_lacks("runc 1.1.5 exec ignores LISTEN_FDS: it passes only --preserve-fds, no LISTEN_* env")
def test_exec_passes_listen_fds_then_preserved_fds(runtime, probe_binary, tmp_path):
    c = runtime.container(["sleep", "1000"], create=False)
    install(probe_binary, c.rootfs)
    c.create()
    c.start()
    files = _objects(tmp_path)
    out = _activated(runtime, files, "exec", "--preserve-fds", "1", c.id, "/bin/probe", "fds")
    # sd_listen_fds(3) only accepts fds meant for the calling process: an exec'd process is not
    # the container's pid 1, so LISTEN_PID is its own pid in the container.
    assert _check(out, files, lambda info: info["pid"])["pid"] != "1"


def test_preserved_fds_without_activation(runtime, probe_binary, tmp_path):
    """No LISTEN_PID for the runtime: LISTEN_FDS is not ours, --preserve-fds counts from fd 3."""
    c = runtime.bundle(["/bin/probe", "fds"])
    install(probe_binary, c.rootfs)
    files = _objects(tmp_path)
    cp = execute(["sh", "-c", 'exec 3<"$1" 4<"$2" 5<"$3"; shift 3; export LISTEN_FDS=2 LISTEN_PID=1; exec "$@"',
                  "sh", *files] + runtime.argv("run", "--bundle", c.bundle, "--preserve-fds", "1", c.id))
    assert cp.returncode == 0, describe(cp)
    info, fds = _parse_fds(cp.stdout)
    assert sorted(fds) == [0, 1, 2, 3] and fds[3] == _ident(files[0]), cp.stdout
    assert info["LISTEN_FDS"] == "-", cp.stdout  # not passed on when it was not meant for the runtime


def _receive(sock, timeout=30):
    """Datagrams until MAINPID arrived (runc sends READY and MAINPID apart, pyrunc in one)."""
    lines = []
    deadline = time.monotonic() + timeout
    while not any(line.startswith("MAINPID=") for line in lines):
        sock.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            data = sock.recv(4096)
        except socket.timeout:
            raise AssertionError(f"no READY/MAINPID on the notify socket; got {lines}") from None
        lines += [line for line in data.decode().split("\n") if line]
    return lines


def test_notify_socket_passthrough(runtime, probe_binary, tmp_path):
    path = str(tmp_path / "notify.sock")
    host = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    host.bind(path)
    try:
        c = runtime.container(["sh", "-c", 'echo "$NOTIFY_SOCKET" > /shared/env; /bin/probe sdnotify; exec sleep 1000'],
                              create=False, shared=True)
        install(probe_binary, c.rootfs)
        env = dict(os.environ, NOTIFY_SOCKET=path)
        c.create(env=env)
        c.start(env=env)  # returns once READY was passed on
        lines = _receive(host)
        assert "READY=1" in lines, lines
        assert f"MAINPID={c.pid}" in lines, lines
        # the container gets its own socket (runc's path), never the caller's
        assert c.read("env").strip() == "/run/notify/notify.sock"
    finally:
        host.close()
