"""`pyrunc-shim`, the daemonless (conmon-like) monitor, with pyrunc and runc under it: the container
outlives the caller, logs in k8s-file and json-file, rotation that loses no line, attach clients
joining and leaving with stdin and detach keys, pty resize through the ctl fifo, exit files."""
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

from integration.helpers.bundle import config_for, make_bundle
from integration.helpers.runtime import leftovers
from integration.shim.containerd import REPO

SHIM = os.path.join(REPO, ".venv", "bin", "pyrunc-shim")
K8S = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}[+-]\d\d:\d\d (stdout|stderr) ([PF]) (.*)$")


def _wait(pred, timeout=30, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class Daemonless:
    """One container under pyrunc-shim, started as podman starts conmon (sync pipe, api-version 1)."""

    def __init__(self, binary, d, cid):
        self.binary, self.cid = binary, cid
        self.dir = os.path.join(d, cid)
        self.bundle = os.path.join(self.dir, "bundle")
        self.root = os.path.join(d, "root")
        self.exit_dir = os.path.join(self.dir, "exits")
        os.makedirs(self.exit_dir)
        self.monitor_pid = 0

    def rt(self, *args, check=True):
        cp = subprocess.run([self.binary, "--root", self.root, *args], capture_output=True, text=True, timeout=60)
        if check:
            assert cp.returncode == 0, cp
        return cp

    def create(self, args, *flags, terminal=False, wrapper=None):
        cfg = config_for(list(args))
        cfg["process"]["terminal"] = terminal
        make_bundle(self.bundle, config=cfg)
        r, w = os.pipe()
        argv = [SHIM, "--api-version", "1", "-c", self.cid, "-u", self.cid, "-r", self.binary,
                "--runtime-arg", "--root", "--runtime-arg", self.root, "-b", self.bundle,
                "-P", os.path.join(self.dir, "conmon.pid"), "--exit-dir", self.exit_dir,
                "-0", self.dir, "--socket-dir-path", os.path.join(self.dir, "s"), *flags]
        env = dict(os.environ, _OCI_SYNCPIPE=str(w))
        caller = subprocess.Popen(wrapper(argv) if wrapper else argv, env=env, pass_fds=(w,),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        os.close(w)
        try:
            ready, _, _ = select.select([r], [], [], 60)
            assert ready, "no answer on the sync pipe"
            line = os.read(r, 4096)
        finally:
            os.close(r)
        self.caller = caller
        with open(os.path.join(self.dir, "conmon.pid")) as f:
            self.monitor_pid = int(f.read())
        msg = json.loads(line)
        assert msg["data"] > 0, msg
        self.pid = msg["data"]
        return msg

    def start(self):
        self.rt("start", self.cid)

    def exit_code(self, timeout=60):
        path = os.path.join(self.exit_dir, self.cid)
        _wait(lambda: os.path.exists(path), timeout, "the exit file")
        _wait(lambda: not _alive(self.monitor_pid), 30, "the monitor to exit")
        with open(path) as f:
            code = f.read()
        with open(os.path.join(self.dir, "exit")) as f:
            assert f.read() == code
        return int(code)

    def attach(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        s.connect(os.path.join(self.dir, "s", self.cid, "attach"))
        s.settimeout(30)
        return s

    def close(self):
        problems = []
        if self.monitor_pid and _alive(self.monitor_pid):
            self.rt("kill", self.cid, "KILL", check=False)
            try:
                _wait(lambda: not _alive(self.monitor_pid), 30, "the monitor to exit")
            except AssertionError:
                problems.append(f"monitor {self.monitor_pid} still alive")
                os.kill(self.monitor_pid, signal.SIGKILL)
        self.rt("delete", "--force", self.cid, check=False)
        problems += leftovers(self.root, self.cid, self.bundle, None)
        return problems


@pytest.fixture
def shim(binary):
    d = tempfile.mkdtemp(prefix="pyrunc-dl-")
    made = []

    def make(cid="d1"):
        s = Daemonless(binary, d, cid)
        made.append(s)
        return s
    yield make
    problems = []
    for s in made:
        problems += s.close()
    shutil.rmtree(d, ignore_errors=True)
    assert not problems, problems


def _k8s(path):
    out = []
    with open(path, errors="replace") as f:
        for line in f:
            m = K8S.match(line.rstrip("\n"))
            assert m, line
            out.append((m.group(1), m.group(2) == "F", m.group(3)))
    return out


def _json(path):
    with open(path) as f:
        return [(o["stream"], o["log"].endswith("\n"), o["log"].rstrip("\n"))
                for o in map(json.loads, f)]


def test_container_outlives_its_caller(shim):
    """The caller (a shell that runs pyrunc-shim and exits) is gone; the monitor is nobody's child
    but init's, the container keeps running, and its kill shows in the exit files as 128+9."""
    s = shim()
    s.create(["sh", "-c", "echo up; exec sleep 1000"], "-l", os.path.join(s.dir, "ctr.log"),
             wrapper=lambda argv: ["sh", "-c", '"$@"; echo caller-done', "sh", *argv])
    assert s.caller.wait(60) == 0
    assert s.caller.stdout.read() == b"caller-done\n"
    s.start()
    assert _wait(lambda: any(t == "up" for _, _, t in _k8s(os.path.join(s.dir, "ctr.log"))), what="output")
    with open(f"/proc/{s.monitor_pid}/stat") as f:
        ppid = int(f.read().rsplit(")", 1)[1].split()[1])
    assert ppid != os.getpid() and ppid != s.caller.pid
    assert os.getsid(s.monitor_pid) == s.monitor_pid  # its own session: no terminal hangup reaches it
    assert json.loads(s.rt("state", s.cid).stdout)["status"] == "running"
    assert _alive(s.pid)
    s.rt("kill", s.cid, "KILL")
    assert s.exit_code() == 137


def test_logs_in_both_formats_and_exit_code(shim):
    s = shim()
    k8s, js = os.path.join(s.dir, "k.log"), os.path.join(s.dir, "j.log")
    s.create(["sh", "-c", 'echo out; echo "err \\"q\\"" >&2; printf "tab\\there\\n"; printf partial; exit 3'],
             "-l", f"k8s-file:{k8s}", "-l", f"json-file:{js}", "--sync",
             wrapper=lambda argv: argv)
    s.start()
    assert s.exit_code() == 3
    assert s.caller.wait(30) == 0  # --sync: the monitor itself was the caller's child
    for got in (_k8s(k8s), _json(js)):
        assert [e for e in got if e[0] == "stdout"] == [("stdout", True, "out"), ("stdout", True, "tab\there"),
                                                      ("stdout", False, "partial")]
        assert [e for e in got if e[0] == "stderr"] == [("stderr", True, 'err "q"')]
    with open(js) as f:
        first = json.loads(f.readline())
    assert set(first) == {"log", "stream", "time"} and first["time"].endswith("Z")


def test_rotation_loses_no_line_while_the_container_writes_fast(shim):
    n = 200000
    for fmt in ("k8s-file", "json-file"):
        s = shim(f"rot-{fmt}")
        log = os.path.join(s.dir, "c.log")
        s.create(["seq", "1", str(n)], "-l", f"{fmt}:{log}", "--log-size-max", str(256 << 10),
                 "--log-max-files", "400")
        s.start()
        assert s.exit_code() == 0
        files = sorted((f for f in os.listdir(s.dir) if f.startswith("c.log")),
                       key=lambda f: -int(f.rsplit(".", 1)[1]) if f[-1].isdigit() else 0)
        assert len(files) > 5
        entries = []
        for f in files:
            assert os.path.getsize(os.path.join(s.dir, f)) <= 256 << 10
            entries += (_k8s if fmt == "k8s-file" else _json)(os.path.join(s.dir, f))
        assert [int(t) for _, full, t in entries] == list(range(1, n + 1))
        assert all(full for _, full, _ in entries)


def _recv_until(sock, want, what, also=b""):
    """Packets until want (and also) arrived; stdout and stderr are separate pipes, so their
    relative order is not kept (nor is it by conmon)."""
    got = b""
    deadline = time.monotonic() + 30
    while want not in got or also not in got:
        assert time.monotonic() < deadline, f"{what}: got {got!r}"
        pkt = sock.recv(8192)
        assert pkt, f"{what}: the shim closed the attach connection; got {got!r}"
        assert pkt[0] in (2, 3)
        got += pkt[1:]
    return got


def test_attach_clients_join_and_leave(shim):
    """Two clients: stdin typed into one reaches the container, the output reaches both; one
    leaves with the detach keys (ctrl-p ctrl-q, never forwarded), output still reaches the other,
    and the container's stdin stays open for it."""
    s = shim()
    s.create(["sh", "-c", 'while read l; do echo "got $l"; echo "err $l" >&2; done; echo eof'],
             "-i", "--leave-stdin-open", "-l", os.path.join(s.dir, "ctr.log"))
    a, b = s.attach(), s.attach()
    s.start()
    b.send(b"one\n")
    for c in (a, b):
        _recv_until(c, b"got one\n", "client output")
    a.send(b"two\n\x10")
    a.send(b"\x11")  # the sequence split over two packets
    _recv_until(b, b"err two\n", "stderr packets", also=b"got two\n")
    a.settimeout(10)
    while True:  # a is let go: what it still reads ends in EOF
        pkt = a.recv(8192)
        if not pkt:
            break
    a.close()
    b.send(b"three\n")
    got = _recv_until(b, b"got three\n", "after the other client left")
    assert b"\x10" not in got and b"\x11" not in got
    c = s.attach()  # a new client joins later
    b.close()       # b leaves without detaching: with --leave-stdin-open the stdin stays
    c.send(b"four\n")
    _recv_until(c, b"got four\n", "a client that joined later")
    lines = [t for st, _, t in _k8s(os.path.join(s.dir, "ctr.log")) if st == "stdout"]
    assert lines[:3] == ["got one", "got two", "got three"]
    c.close()
    s.rt("kill", s.cid, "KILL")
    assert s.exit_code() == 137


def test_client_eof_closes_stdin(shim):
    s = shim()
    s.create(["sh", "-c", "cat; echo done; exit 5"], "-i", "-l", os.path.join(s.dir, "ctr.log"))
    a = s.attach()
    s.start()
    a.send(b"hello\n")
    _recv_until(a, b"hello\n", "echo of stdin")
    a.shutdown(socket.SHUT_WR)
    a.close()
    assert s.exit_code() == 5
    assert [t for _, _, t in _k8s(os.path.join(s.dir, "ctr.log"))] == ["hello", "done"]


def test_terminal_resize_through_ctl_and_winsz(shim):
    s = shim()
    s.create(["sh", "-c", "read x; stty size; read x; stty size; exit 0"], "-t", "-i",
             "-l", os.path.join(s.dir, "ctr.log"), terminal=True)
    a = s.attach()
    s.start()
    with open(os.path.join(s.bundle, "ctl"), "w") as f:
        f.write("1 40 100\n")
    time.sleep(0.2)  # the ctl line is read before the next input (both go through one loop)
    a.send(b"go\r")
    _recv_until(a, b"40 100", "stty size after a ctl resize")
    with open(os.path.join(s.bundle, "winsz"), "w") as f:
        f.write("1 25 81\n")
    time.sleep(0.2)
    a.send(b"go\r")
    _recv_until(a, b"25 81", "stty size after a winsz resize")
    a.close()
    assert s.exit_code() == 0


def test_runtime_failure_reaches_the_sync_pipe(shim, binary):
    s = shim()
    make_bundle(s.bundle, config=config_for(["true"]))
    r, w = os.pipe()
    cp = subprocess.run([SHIM, "--api-version", "1", "-c", s.cid, "-r", binary, "--runtime-arg", "--root",
                         "--runtime-arg", s.root, "-b", s.bundle, "--exit-dir", s.exit_dir,
                         "--runtime-opt", "--no-such-flag"],
                        env=dict(os.environ, _OCI_SYNCPIPE=str(w)), pass_fds=(w,), capture_output=True)
    os.close(w)
    assert cp.returncode == 0  # the parent only forks
    with os.fdopen(r, "rb") as f:
        msg = json.loads(f.readline())
    assert msg["data"] == -1 and "create failed" in msg["message"], msg
    assert not os.listdir(s.exit_dir)


def test_usage_errors_are_clear():
    cp = subprocess.run([SHIM, "-c", "x", "-r", "runc"], capture_output=True, text=True)
    assert cp.returncode == 2 and "--bundle is required" in cp.stderr and "Traceback" not in cp.stderr
    cp = subprocess.run([SHIM, "-c", "x", "-r", "runc", "-b", "/", "-l", "journald:x"], capture_output=True,
                        text=True)
    assert cp.returncode == 2 and "journald: not supported" in cp.stderr
