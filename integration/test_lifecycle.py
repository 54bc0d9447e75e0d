"""create -> start -> stopped -> delete, `run` in the foreground and detached, pid files, the
create/start gate."""
import os
import signal
import subprocess

from integration.helpers.bundle import write_config
from integration.helpers.runtime import (
    assert_no_traceback, drop_namespace, execute, release_fifo, wait_for)

# /shared/started is touched, then the process blocks until the host writes to the /shared/go FIFO
WAIT_FOR_GO = "touch /shared/started; read x < /shared/go; echo done > /shared/finished"


def _gated(runtime, **kw):
    c = runtime.bundle(["sh", "-c", WAIT_FOR_GO], shared=True, **kw)
    os.mkfifo(c.path("go"))
    return c


def test_create_start_state_delete(runtime):
    c = _gated(runtime)
    c.create()
    st = c.state()
    assert st["id"] == c.id
    assert st["status"] == "created"
    assert isinstance(st["pid"], int) and st["pid"] > 0
    assert st["bundle"] == os.path.realpath(c.bundle)
    assert isinstance(st["ociVersion"], str) and st["ociVersion"]
    assert os.path.exists(f"/proc/{st['pid']}"), "the init pid of a created container must be alive"
    assert not os.path.exists(c.path("started")), "create must not run process.args"

    c.start()
    c.wait_file("started")
    st = c.state()
    assert st["status"] == "running"
    assert st["pid"] > 0

    release_fifo(c.path("go"))
    c.wait_status("stopped")
    assert c.read("finished") == "done\n"
    st = c.state()
    assert st["pid"] == 0, "runc reports pid 0 for a stopped container"
    assert st["bundle"] == os.path.realpath(c.bundle)

    c.delete()
    cp = runtime.fail("state", c.id)
    assert "does not exist" in cp.stderr
    assert c.leftovers() == []


def test_created_pid_is_init_and_state_is_derived(runtime):
    """The created init is a real process; when it dies the state says stopped (derived, not stored)."""
    c = runtime.container(["true"])
    pid = c.pid
    os.kill(pid, signal.SIGKILL)
    c.wait_status("stopped")
    c.delete()


def test_create_start_gate(runtime):
    """process.args must not run before `start`: it would create a file in a bind mount."""
    c = runtime.bundle(["touch", "/shared/ran"], shared=True)
    c.create()
    assert c.status == "created"
    assert not os.path.exists(c.path("ran"))
    c.start()
    c.wait_file("ran")
    c.wait_status("stopped")
    c.delete()


def test_start_twice_fails(runtime):
    c = _gated(runtime)
    c.create()
    c.start()
    c.wait_file("started")
    runtime.fail("start", c.id)
    assert c.status == "running", "a failed start must not affect the container"
    release_fifo(c.path("go"))
    c.wait_status("stopped")
    runtime.fail("start", c.id)
    c.delete()


def test_start_after_init_died_fails(runtime):
    c = runtime.bundle(["touch", "/shared/ran"], shared=True)
    c.create()
    os.kill(c.pid, signal.SIGKILL)
    c.wait_status("stopped")
    runtime.fail("start", c.id)
    assert not os.path.exists(c.path("ran"))
    c.delete()


def test_start_nonexistent_fails(runtime):
    runtime.fail("start", runtime.new_id())


def test_state_nonexistent(runtime):
    cp = runtime.fail("state", runtime.new_id())
    assert "does not exist" in cp.stderr


def test_create_pid_file(runtime, tmp_path):
    pid_file = tmp_path / "init.pid"
    c = runtime.container(["true"], create_args=["--pid-file", str(pid_file)])
    content = pid_file.read_text()
    assert content == str(c.pid), f"pid file must hold the init pid without a newline: {content!r}"
    c.delete()


def test_create_pid_file_relative_to_cwd(runtime, tmp_path):
    """A relative --pid-file is resolved against the caller's cwd, not the bundle."""
    c = runtime.bundle(["true"])
    runtime.run("create", "--bundle", c.bundle, "--pid-file", "rel.pid", c.id, cwd=str(tmp_path))
    assert (tmp_path / "rel.pid").read_text() == str(c.pid)
    c.delete()


def test_run_stdout_passthrough(runtime):
    cp = runtime.sh("echo hello; echo to-stderr >&2")
    assert cp.stdout == "hello\n"
    assert "to-stderr" in cp.stderr


def test_run_stdin_passthrough(runtime):
    c = runtime.bundle(["sh", "-c", "read line; echo got:$line"])
    cp = c.run(input="abc\n")
    assert cp.stdout == "got:abc\n"


def test_run_exit_code(runtime):
    cp = runtime.sh("exit 3", check=False)
    assert cp.returncode == 3, cp
    cp = runtime.sh("exit 0")
    assert cp.returncode == 0


def test_run_killed_by_signal_exit_code(runtime):
    # without a pid namespace sh is not a namespace init, so it can SIGKILL itself
    config = drop_namespace(runtime.config(), "pid")
    cp = runtime.sh("kill -9 $$", config=config, check=False)
    assert cp.returncode == 128 + 9, cp


def test_run_killed_from_outside_exit_code(runtime):
    """`run` in the foreground, the container killed with `kill ID KILL`: run exits 137."""
    c = runtime.bundle(["sh", "-c", "touch /shared/started; exec sleep 1000"], shared=True)
    proc = subprocess.Popen(runtime.argv("run", "--bundle", c.bundle, c.id), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        c.wait_file("started")
        c.kill("KILL")
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert_no_traceback(err.decode())
    assert proc.returncode == 137, err


def test_run_deletes_container(runtime):
    c = runtime.bundle(["true"])
    c.run()
    runtime.fail("state", c.id)
    assert c.leftovers() == []


def test_run_detach(runtime):
    c = runtime.bundle(["sh", "-c", WAIT_FOR_GO], shared=True)
    os.mkfifo(c.path("go"))
    cp = c.run("--detach")
    assert cp.returncode == 0
    c.wait_file("started")
    assert c.status == "running"
    release_fifo(c.path("go"))
    c.wait_status("stopped")
    c.delete()


def test_run_detach_short_flag(runtime):
    c = runtime.bundle(["sleep", "1000"])
    c.run("-d")
    assert c.status == "running"
    c.kill("KILL")
    c.wait_status("stopped")
    c.delete()


def test_run_keep(runtime):
    c = runtime.bundle(["sh", "-c", "exit 5"])
    cp = c.run("--keep", check=False)
    assert cp.returncode == 5
    st = c.state()
    assert st["status"] == "stopped"
    c.delete()
    runtime.fail("state", c.id)


def test_run_pid_file(runtime, tmp_path):
    pid_file = tmp_path / "run.pid"
    c = runtime.bundle(["sleep", "1000"])
    c.run("--detach", "--pid-file", str(pid_file))
    assert pid_file.read_text() == str(c.pid)
    c.kill("KILL")
    c.wait_status("stopped")
    c.delete()


def test_run_foreground_pid_file(runtime, tmp_path):
    pid_file = tmp_path / "fg.pid"
    c = runtime.bundle(drop_namespace(runtime.config(["sh", "-c", "echo $$"]), "pid"))
    cp = c.run("--pid-file", str(pid_file))
    assert pid_file.read_text() == cp.stdout.strip()


def test_bundle_defaults_to_cwd(runtime):
    c = runtime.bundle(["sh", "-c", "echo in-cwd-bundle"])
    cp = runtime.run("run", c.id, cwd=c.bundle)
    assert cp.stdout == "in-cwd-bundle\n"


def test_create_from_relative_bundle(runtime, tmp_path):
    c = runtime.bundle(["true"])
    runtime.run("create", "--bundle", os.path.basename(c.bundle), c.id, cwd=os.path.dirname(c.bundle))
    assert c.state()["bundle"] == os.path.realpath(c.bundle), "state.bundle must be absolute"
    c.delete()


def test_config_changes_after_create_are_ignored(runtime):
    c = runtime.bundle(["sh", "-c", "hostname > /shared/hostname"], shared=True)
    c.create()
    c.config["hostname"] = "changed"
    c.config["process"]["args"] = ["sh", "-c", "echo wrong > /shared/hostname"]
    write_config(c.bundle, c.config)
    c.start()
    c.wait_status("stopped")
    assert c.read("hostname") == "runc\n"
    c.delete()


def test_many_sequential_containers_in_one_root(runtime):
    ids = []
    for _ in range(3):
        c = runtime.container(["true"])
        ids.append(c.id)
    assert sorted(runtime.list_ids()) == sorted(ids)
    for id in ids:
        runtime.run("delete", id)
    assert runtime.list_ids() == []


def test_process_args_env_path_lookup(runtime):
    """args[0] without a slash is looked up in process.env's PATH (execvp semantics)."""
    cp = runtime.sh("exec busybox echo via-path")
    assert cp.stdout == "via-path\n"
    config = runtime.config(["echo", "bare-name"])
    c = runtime.bundle(config)
    assert c.run().stdout == "bare-name\n"


def test_help_of_commands(runtime):
    for cmd in ("create", "start", "state", "kill", "delete", "run", "list", "spec"):
        cp = runtime.run(cmd, "--help")
        assert cp.stdout.strip(), f"`{cmd} --help` printed nothing"


def test_execute_helper_sees_exit_codes():
    """Sanity check of the test harness itself."""
    assert execute(["sh", "-c", "exit 4"]).returncode == 4
    wait_for(lambda: True)
