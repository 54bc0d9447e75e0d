"""Terminals through real ptys: console sockets (create, exec) and foreground run/exec proxies."""
import os

import pytest

from integration.helpers.console import ConsoleSocket, PtySession, read_until


def _tty_config(runtime, args, size=None):
    config = runtime.config(args)
    config["process"]["terminal"] = True
    if size:
        config["process"]["consoleSize"] = {"height": size[0], "width": size[1]}
    return config


def test_console_socket_create(runtime, tmp_path):
    sock = ConsoleSocket(tmp_path / "console.sock")
    try:
        config = _tty_config(runtime, ["sh", "-c", 'echo "S=$(stty size) T=$(tty)"; ls -l /dev/console; '
                                                   "[ -t 0 ] && [ -t 1 ] && [ -t 2 ] && echo ALLTTY; sleep 1000"],
                             size=(37, 111))
        c = runtime.container(config, create_args=("--console-socket", sock.path))
        master = sock.wait()
        assert sock.fd_count == 1 and sock.name  # receivers ignore the name (runc sends "/dev/ptmx")
        c.start()
        out = read_until(master, "ALLTTY")
        assert b"S=37 111" in out
        assert b"T=/dev/pts/0" in out  # the container's own devpts instance
        assert b"136," in out.split(b"/dev/console")[0].splitlines()[-1]  # /dev/console is the pty
    finally:
        sock.close()


def test_terminal_requires_console_socket_when_detached(runtime):
    c = runtime.container(_tty_config(runtime, ["true"]), create=False)
    runtime.fail("create", "--bundle", c.bundle, c.id)
    assert c.leftovers() == []


def test_console_socket_without_terminal_fails(runtime, tmp_path):
    sock = ConsoleSocket(tmp_path / "c.sock")
    try:
        c = runtime.container(["true"], create=False)
        runtime.fail("create", "--bundle", c.bundle, "--console-socket", sock.path, c.id)
        assert c.leftovers() == []
    finally:
        sock.close()


def test_exec_console_socket(runtime, tmp_path):
    c = runtime.container(["sleep", "1000"])
    c.start()
    sock = ConsoleSocket(tmp_path / "exec.sock")
    try:
        runtime.run("exec", "-t", "-d", "--console-socket", sock.path, c.id, "sh", "-c",
                    'echo "T=$(tty)"; sleep 1000')
        master = sock.wait()
        assert b"T=/dev/pts/" in read_until(master, "\n", buffer=b"")
    finally:
        sock.close()


def test_run_foreground_shell_through_a_pty(runtime):
    c = runtime.bundle(_tty_config(runtime, ["sh"]))
    session = PtySession(runtime.argv("run", "--bundle", c.bundle, c.id), rows=24, cols=80)
    try:
        session.expect("# ")  # a shell prompt
        session.send('echo "S=$(stty size)"\n')
        session.expect("S=24 80")
        session.resize(40, 132)
        session.send('echo "R=$(stty size)"\n')
        session.expect("R=40 132")
        session.send("exit 3\n")
        assert session.wait() == 3
    finally:
        session.close()


def test_exec_foreground_tty_through_a_pty(runtime):
    c = runtime.container(["sleep", "1000"])
    c.start()
    session = PtySession(runtime.argv("exec", "-t", c.id, "sh"), rows=30, cols=90)
    try:
        session.expect("# ")
        session.send('echo "S=$(stty size) T=$(tty)"\n')
        out = session.expect("T=/dev/pts/")
        assert b"S=30 90" in out
        session.resize(50, 160)
        session.send('echo "R=$(stty size)"\n')
        session.expect("R=50 160")
        session.send("exit 4\n")
        assert session.wait() == 4
    finally:
        session.close()


@pytest.mark.runc_lacks("runc 1.1.5 has no --pidfd-socket (runc 1.2 added it)")
def test_pidfd_socket_create_and_exec(runtime, tmp_path):
    """--pidfd-socket: a pidfd of init (create) or of the exec'd process (exec) arrives on the socket
    as runc 1.2 sends it: one fd, payload the init type."""
    def pidfd_pid(fd):
        with open(f"/proc/self/fdinfo/{fd}") as f:
            fields = dict(line.split(":", 1) for line in f.read().splitlines() if ":" in line)
        return int(fields["Pid"])

    sock = ConsoleSocket(tmp_path / "pidfd.sock")
    try:
        c = runtime.container(["sleep", "1000"], create_args=("--pidfd-socket", sock.path))
        assert sock.fd_count == 1 and sock.name == "standard"
        assert pidfd_pid(sock.wait()) == c.pid
    finally:
        sock.close()
    c.start()
    sock = ConsoleSocket(tmp_path / "pidfd-exec.sock")
    pid_file = tmp_path / "exec.pid"
    try:
        runtime.run("exec", "-d", "--pid-file", str(pid_file), "--pidfd-socket", sock.path, c.id, "sleep", "100")
        fd = sock.wait()
        assert sock.fd_count == 1 and sock.name == "setns"
        assert pidfd_pid(fd) == int(pid_file.read_text())
    finally:
        sock.close()


def test_pidfd_socket_unreachable_fails_create(runtime, tmp_path):
    c = runtime.container(["true"], create=False)
    cp = runtime.run("create", "--bundle", c.bundle, "--pidfd-socket", str(tmp_path / "missing.sock"), c.id,
                     check=False)
    assert cp.returncode != 0 and cp.stderr.strip()
    assert c.leftovers() == []


def test_terminal_owned_by_the_container_user(runtime, tmp_path):
    """runc gives the pty to the process's uid before switching to it and keeps its group (devpts
    gid=5): a non-root user owns its terminal (uid:5), and can reopen it."""
    sock = ConsoleSocket(tmp_path / "console.sock")
    try:
        config = _tty_config(runtime, ["sh", "-c", 'echo "OWNER=$(stat -c %u:%g "$(tty)")"; '
                                                   'echo reopen > "$(tty)" && echo DONE; sleep 1000'])
        config["process"]["user"] = {"uid": 1000, "gid": 1000}
        c = runtime.container(config, create_args=("--console-socket", sock.path))
        master = sock.wait()
        c.start()
        out = read_until(master, "DONE")
        assert b"OWNER=1000:5" in out, out
    finally:
        sock.close()
