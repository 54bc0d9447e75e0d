"""pyrunc-shim as podman's conmon: Debian's podman 4.3 with `--conmon <monitor>`, every test run with
conmon (the control) and with pyrunc-shim, each over runc and pyrunc, asserting what a user sees is
the same. Private storage as in test_podman.py (whose Podman and fixtures this reuses).

podman silently falls back to the conmon on PATH when it does not trust the one it is given, so
each test checks that the monitor actually running the container is the one asked for.
"""
import fcntl
import os
import pty
import select
import subprocess
import termios
import time

import pytest

from integration.helpers.runtime import REPO, describe, execute, wait_for
from integration.peers.conftest import IMAGE, need
from integration.peers.test_podman import (RUN_FLAGS, Podman, _run_in_pty, _track, loaded,  # noqa: F401
                                          podman_base)

SHIM = os.path.join(REPO, ".venv", "bin", "pyrunc-shim")
MONITORS = ("conmon", "pyrunc-shim")


class MonitoredPodman(Podman):
    def __init__(self, base, rt, monitor):
        super().__init__(base, rt)
        self.monitor = monitor
        self.monitor_path = need("conmon") if monitor == "conmon" else SHIM

    def argv(self, *args):
        argv = super().argv(*args)
        return argv[:1] + ["--conmon", self.monitor_path] + argv[1:]

    def __call__(self, *args, check=True, timeout=120, input=None):
        cp = execute(self.argv(*args), timeout=timeout, input=input)
        if check and cp.returncode != 0:
            raise AssertionError(describe(cp))
        return cp

    def monitor_of(self, name):
        """The monitor process podman recorded for a running container: its command line must be
        the monitor asked for (no silent fallback to /usr/bin/conmon)."""
        pid = self.inspect(name)["State"]["ConmonPid"]
        assert pid > 0, self.inspect(name)["State"]
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().decode().split("\0")
        if self.monitor == "conmon":
            assert argv[0] == "/usr/bin/conmon", argv
        else:  # forked by pyrunc-shim's zygote, or (without one) pyrunc-shim's own fork
            assert argv[-3].endswith("pyrunc_shim/zygote.py") or SHIM in argv[:3], argv
        return pid


@pytest.fixture(params=MONITORS, ids=MONITORS)
def podman(request, podman_base, image_archive, peer_runtime):  # noqa: F811
    yield from loaded(MonitoredPodman(podman_base, peer_runtime, request.param), image_archive)


def _name(podman, tag):
    return f"{podman.monitor}-{podman.rt.name}-{tag}-{os.getpid()}"


def _detached(podman, tag, *args):
    name = _name(podman, tag)
    cp = podman.run("-d", "--name", name, *args)
    _track(podman, name)
    assert cp.returncode == 0, describe(cp)
    return name


def test_podman_trusts_the_monitor(podman):
    info = podman("info", "--format", "{{.Host.Conmon.Path}}|{{.Host.Conmon.Version}}").stdout.strip()
    path, version = info.split("|", 1)
    assert path == podman.monitor_path, info
    assert version.startswith("conmon version 2."), info
    if podman.monitor == "pyrunc-shim":
        assert "pyrunc-shim" in version, info


def test_run_rm_exit_code_and_cleanup(podman):
    start = time.monotonic()
    cp = podman.run("--rm", IMAGE, "sh", "-c", "cat /etc/motd; echo oops >&2; exit 3")
    took = time.monotonic() - start
    assert cp.returncode == 3, describe(cp)
    assert cp.stdout == "made for pyrunc peer tests\n" and cp.stderr == "oops\n", describe(cp)
    # the exit command (`podman container cleanup --rm`) ran: nothing left, and podman did not sit
    # out its 20 s "conmon is gone but the container is not exited" timeout
    assert podman("ps", "-aq").stdout.strip() == ""
    assert took < 10, took


def test_detached_logs_exec_stop_restart_kill_wait_rm(podman, request):
    podman.rt.needs_exec(request)
    name = _detached(podman, "life", IMAGE, "sh", "-c",
                     "trap 'echo got-term; exit 7' TERM; echo ready; echo warn >&2; "
                     "while :; do sleep 0.1; done")
    wait_for(lambda: "ready" in podman("logs", name).stdout, what="ready in podman logs")
    podman.monitor_of(name)
    logs = podman("logs", name)
    assert (logs.stdout, logs.stderr) == ("ready\n", "warn\n"), describe(logs)

    cp = podman("exec", name, "sh", "-c", "echo out; echo err >&2; exit 4", check=False)
    assert (cp.returncode, cp.stdout, cp.stderr) == (4, "out\n", "err\n"), describe(cp)
    cp = podman("exec", "-i", name, "sh", "-c", "tr a-z A-Z", check=False, input="piped in\n")
    assert (cp.returncode, cp.stdout) == (0, "PIPED IN\n"), describe(cp)
    cp = podman("healthcheck", "run", name, check=False)  # an exec session too (no healthcheck set)
    assert cp.returncode != 0 and "has no defined healthcheck" in cp.stderr, describe(cp)

    podman("stop", "-t", "20", name)
    state = podman.inspect(name)["State"]
    assert (state["Status"], state["ExitCode"]) == ("exited", 7), state
    assert podman("wait", name).stdout.strip() == "7"
    assert podman("logs", name).stdout == "ready\ngot-term\n"

    podman("restart", "-t", "20", name)
    wait_for(lambda: podman("logs", name).stdout.count("ready") == 2, what="second ready")
    podman.monitor_of(name)
    podman("kill", name)
    assert podman("wait", name).stdout.strip() == "137"
    assert podman.inspect(name)["State"]["Status"] == "exited"
    podman("rm", name)
    assert podman("ps", "-aq").stdout.strip() == ""


def test_json_file_log_with_max_size(podman):
    name = _detached(podman, "json", "--log-driver", "json-file", "--log-opt", "max-size=4k", IMAGE, "sh", "-c",
                     "i=0; while [ $i -lt 400 ]; do echo line-$i; i=$((i+1)); done; echo done")
    assert podman("wait", name).stdout.strip() == "0"
    path = podman.inspect(name)["HostConfig"]["LogConfig"]["Path"]
    assert os.path.getsize(path) <= 4096 + 200, os.path.getsize(path)
    lines = podman("logs", name).stdout.splitlines()
    assert lines and lines[-1] == "done", lines[-5:]
    # truncated from the front, never torn: what is kept is a run of whole, consecutive lines
    nums = [int(ln.split("-")[1]) for ln in lines[:-1]]
    assert nums == list(range(nums[0], 400)) if nums else True, lines[:5]
    podman("rm", name)


def test_run_it_and_exec_it_on_a_pty(podman, request):
    podman.rt.needs_exec(request)
    code, out = _run_in_pty(podman.argv("run", "-it", "--rm", *RUN_FLAGS, IMAGE, "sh"),
                            b"tty; echo $((6*7)); exit 3\n")
    assert code == 3 and "/dev/pts/0" in out and "42" in out, out
    name = _detached(podman, "tty", "-t", IMAGE, "sleep", "1000")
    podman.monitor_of(name)
    code, out = _run_in_pty(podman.argv("exec", "-it", name, "sh"), b"tty; echo $((7*6)); exit 5\n")
    assert code == 5 and "/dev/pts/" in out and "42" in out, out
    podman("rm", "-f", "-t", "0", name)


def _attach_until(argv, script, marker, timeout=60):
    """A client on a pty that types script, waits for marker in the output, then is killed."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, start_new_session=True,
                            preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0))
    os.close(slave)
    out, sent = b"", False
    deadline = time.monotonic() + timeout
    try:
        while marker not in out:
            assert time.monotonic() < deadline and proc.poll() is None, out
            if select.select([master], [], [], 0.2)[0]:
                out += os.read(master, 4096)
            if not sent and (b"# " in out or time.monotonic() > deadline - timeout + 3):
                os.write(master, script)
                sent = True
        return out.decode(errors="replace")
    finally:
        proc.kill()
        proc.wait()
        os.close(master)


def test_attach_twice(podman, request):
    """Two attach sessions one after the other (the first killed, as a client that goes away),
    typing into the container's terminal; its exit code reaches `podman wait`."""
    podman.rt.needs_exec(request)
    name = _detached(podman, "att", "-it", IMAGE, "sh")
    podman.monitor_of(name)
    out = _attach_until(podman.argv("attach", name), b"echo $((4*4))\n", b"16")
    assert podman.inspect(name)["State"]["Status"] == "running", out
    code, out = _run_in_pty(podman.argv("attach", name), b"echo $((5*5)); exit 9\n")
    assert "25" in out, out
    assert podman("wait", name).stdout.strip() == "9"
    podman("rm", name)
