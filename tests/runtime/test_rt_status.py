"""state/status.py: start time from /proc/<pid>/stat and the derived status, on real processes."""
import builtins
import io
import os
import signal
import time

import pytest

from pyrunc.state import status as st


def _stat_line(comm, state="S", start=123456789):
    # pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime cutime
    # cstime priority nice num_threads itrealvalue starttime vsize ...
    rest = [state, "1", "2", "3", "0", "-1", "4194304", "10", "0", "0", "0", "1", "2", "0", "0", "20", "0",
            "1", "0", str(start), "1000", "200"] + ["0"] * 30
    return f"4242 ({comm}) " + " ".join(rest) + "\n"


@pytest.fixture
def fake_stat(monkeypatch):
    """Serve /proc/4242/stat from memory; everything else from the real open()."""
    content = {}
    real_open = builtins.open

    def fake_open(path, mode="r", *args, **kwargs):
        if path == "/proc/4242/stat":
            if "data" not in content:
                raise FileNotFoundError(2, "No such file or directory", path)
            return io.BytesIO(content["data"].encode()) if "b" in mode else io.StringIO(content["data"])
        return real_open(path, mode, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", fake_open)
    return content


@pytest.mark.parametrize("comm", ["sleep", "a b", "a) b", ") S 1 2 3 (", "x) Z 9 9 9 9 9 9 9", "()", ")",
                                  "(", "a\nb", ""])
def test_start_time_with_hostile_comm(fake_stat, comm):
    fake_stat["data"] = _stat_line(comm, "S", 987654321)
    assert st.start_time(4242) == 987654321


@pytest.mark.parametrize("state", ["R", "S", "D", "T", "t", "I", "P"])
def test_start_time_live_states(fake_stat, state):
    fake_stat["data"] = _stat_line("x) Z (y", state, 42)
    assert st.start_time(4242) == 42


@pytest.mark.parametrize("state", ["Z", "X"])
def test_start_time_zombie_or_dead_is_none(fake_stat, state):
    fake_stat["data"] = _stat_line("sleep) R (", state, 42)
    assert st.start_time(4242) is None


def test_start_time_missing_process(fake_stat):
    assert st.start_time(4242) is None


def test_start_time_of_self():
    with open("/proc/self/stat", "rb") as f:
        data = f.read()
    fields = data[data.rindex(b")") + 2:].split()
    assert st.start_time(os.getpid()) == int(fields[19]) > 0


def _fork(body):
    """Fork a child running body(); returns (pid, read end of a pipe the child may write to)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            body(w)
        finally:
            os._exit(0)
    os.close(w)
    return pid, r


def _reap(pid):
    # Never signal a pid we have already reaped (it may belong to someone else by now).
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:  # the test reaped it already
        return
    if not done:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)


def _sleeper():
    def body(w):
        os.write(w, b"x")
        os.close(w)
        time.sleep(60)
    pid, r = _fork(body)
    assert os.read(r, 1) == b"x"
    os.close(r)
    return pid


def _naive_start_time(pid):
    with open(f"/proc/{pid}/stat", "rb") as f:
        return int(f.read().split()[21])


def test_start_time_real_child_with_hostile_comm():
    # Only a process itself may write its comm: the child reads its start time while its comm is
    # still plain ("python3"), where a naive split is right, then renames itself.
    def body(w):
        before = _naive_start_time(os.getpid())
        with open("/proc/self/comm", "w") as f:
            f.write("x) Z 1 2 (y")
        os.write(w, b"%d\n" % before)
        os.close(w)
        time.sleep(60)
    pid, r = _fork(body)
    try:
        expected = int(os.read(r, 64))
        with open(f"/proc/{pid}/stat", "rb") as f:
            assert f.read().startswith(f"{pid} (x) Z 1 2 (y) ".encode())
        assert _naive_start_time(pid) != expected  # a naive split is now fooled...
        assert st.start_time(pid) == expected  # ...the real parser is not
    finally:
        os.close(r)
        _reap(pid)


def test_zombie_then_gone():
    pid, r = _fork(lambda w: None)
    os.close(r)
    try:
        deadline = time.monotonic() + 5
        while True:
            with open(f"/proc/{pid}/stat", "rb") as f:
                if f.read().split(b") ")[1][:1] == b"Z":
                    break
            assert time.monotonic() < deadline
            time.sleep(0.001)
        assert st.start_time(pid) is None
        state = {"pid": pid, "init_start_time": _naive_start_time(pid)}
        assert st.is_alive(state) is False
    finally:
        os.waitpid(pid, 0)
    assert st.start_time(pid) is None


@pytest.fixture
def sleeper():
    pid = _sleeper()
    yield pid
    _reap(pid)


def test_derive_created_running_stopped(tmp_path):
    fifo = tmp_path / "exec.fifo"
    os.mkfifo(fifo)
    fd = os.open(fifo, os.O_PATH)
    try:
        waiting = _sleeper()  # inherits the fd: like init, it holds exec.fifo until it execs
    finally:
        os.close(fd)
    released = _sleeper()
    try:
        for pid in (waiting, released):
            assert st.is_alive({"pid": pid, "init_start_time": st.start_time(pid)}) is True
        state = {"pid": waiting, "init_start_time": st.start_time(waiting)}
        assert st.derive(state, str(tmp_path)) == st.CREATED == "created"
        # A start killed after releasing init, before removing the fifo: init no longer holds it.
        state = {"pid": released, "init_start_time": st.start_time(released)}
        assert st.derive(state, str(tmp_path)) == st.RUNNING == "running"
        os.unlink(fifo)
        assert st.derive(state, str(tmp_path)) == st.RUNNING == "running"
        os.kill(released, signal.SIGKILL)
        os.waitpid(released, 0)
        assert st.derive(state, str(tmp_path)) == st.STOPPED == "stopped"
        os.mkfifo(fifo)  # a leftover fifo never makes a dead init "created"
        assert st.derive(state, str(tmp_path)) == "stopped"
    finally:
        _reap(waiting)
        try:
            _reap(released)
        except ChildProcessError:
            pass


def test_derive_zombie_init_is_stopped(tmp_path):
    pid, r = _fork(lambda w: None)
    os.close(r)
    try:
        state = {"pid": pid, "init_start_time": _naive_start_time(pid)}
        deadline = time.monotonic() + 5
        while st.start_time(pid) is not None:
            assert time.monotonic() < deadline
            time.sleep(0.001)
        assert st.derive(state, str(tmp_path)) == "stopped"
    finally:
        os.waitpid(pid, 0)


def test_derive_pid_reuse_is_stopped(sleeper, tmp_path):
    # the pid is alive but is not our init: recorded start time differs
    real = st.start_time(sleeper)
    for recorded in (real - 1, real + 1, 0, None, str(real)):
        assert st.derive({"pid": sleeper, "init_start_time": recorded}, str(tmp_path)) == "stopped"
    assert st.derive({"pid": sleeper, "init_start_time": real}, str(tmp_path)) == "running"


@pytest.mark.parametrize("state", [{}, {"pid": 0}, {"pid": None}, {"pid": -1, "init_start_time": 1},
                                   {"pid": 0, "init_start_time": None}])
def test_derive_without_a_pid_is_stopped(state, tmp_path):
    os.mkfifo(tmp_path / "exec.fifo")
    assert st.is_alive(state) is False
    assert st.derive(state, str(tmp_path)) == "stopped"


def test_derive_missing_state_dir_means_running(sleeper, tmp_path):
    state = {"pid": sleeper, "init_start_time": st.start_time(sleeper)}
    assert st.derive(state, str(tmp_path / "gone")) == "running"


def test_derive_creating_until_create_has_finished(sleeper, tmp_path):
    """state.json exists from create's first step (so `delete --force` finds what a killed create
    made): until create finishes it is "creating", with init alive or not yet spawned."""
    (tmp_path / "exec.fifo").touch()
    alive = {"pid": sleeper, "init_start_time": st.start_time(sleeper), "creating": True}
    assert st.derive(alive, str(tmp_path)) == st.CREATING == "creating"
    assert st.derive({"pid": 0, "init_start_time": None, "creating": True}, str(tmp_path)) == "creating"
    del alive["creating"]
    assert st.derive(alive, str(tmp_path)) == "running"  # committed; the fifo is not init's
