"""Hooks: each kind at its step, in the namespaces the runtime-spec says, with the state on stdin."""
import json
import os

import pytest

KINDS = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop")


def _recorder(kind, log):
    """A hook that appends: kind, its mount/pid/net namespace inodes, the state JSON it read."""
    script = (f'state=$(cat); echo "{kind} $(readlink /proc/self/ns/mnt) $(readlink /proc/self/ns/pid) '
              f'$(readlink /proc/self/ns/net) $state" >> {log}')
    return {"path": "/bin/sh", "args": ["sh", "-c", script], "env": ["PATH=/bin:/usr/bin"]}


def _records(path):
    out = []
    with open(path) as f:
        for line in f:
            kind, mnt, pid, net, state = line.rstrip("\n").split(" ", 4)
            out.append((kind, mnt, pid, net, json.loads(state)))
    return out


def _ns(pid, kind):
    return os.readlink(f"/proc/{pid}/ns/{kind}")


@pytest.mark.runc_lacks("runc 1.1.5 runs poststart hooks during create")
def test_every_hook_kind_at_its_step(runtime, tmp_path):
    host_log = tmp_path / "hooks.log"
    config = runtime.config(["sleep", "1000"])
    config["hooks"] = {kind: [_recorder(kind, host_log)] for kind in KINDS}
    # startContainer's path resolves in the container, after pivot_root: its log is under /shared
    config["hooks"]["startContainer"] = [_recorder("startContainer", "/shared/hooks.log")]
    c = runtime.container(config, create=False, shared=True)
    c.create()
    created = _records(host_log)
    assert [r[0] for r in created] == ["prestart", "createRuntime", "createContainer"]
    init = c.pid
    me = os.getpid()
    for kind, mnt, pid, net, state in created:
        assert state["id"] == c.id and state["status"] == "creating"
        assert os.path.realpath(state["bundle"]) == os.path.realpath(c.bundle)
        if kind == "createContainer":  # in the container's namespaces, pid as the container sees it
            assert (mnt, pid, net) == (_ns(init, "mnt"), _ns(init, "pid"), _ns(init, "net"))
            assert state["pid"] == 1
        else:  # the runtime's namespaces; pid as the runtime sees it
            assert (mnt, pid, net) == (_ns(me, "mnt"), _ns(me, "pid"), _ns(me, "net"))
            assert state["pid"] == init
    c.start()
    inside = _records(c.wait_file("hooks.log"))
    assert [r[0] for r in inside] == ["startContainer"]
    _, mnt, pid, net, state = inside[0]
    assert (mnt, pid, net) == (_ns(init, "mnt"), _ns(init, "pid"), _ns(init, "net"))
    assert state["status"] == "created" and state["pid"] == 1 and state["id"] == c.id
    started = _records(host_log)[3:]
    assert [r[0] for r in started] == ["poststart"]
    assert started[0][4]["status"] == "running" and started[0][4]["pid"] == init
    assert started[0][1] == _ns(me, "mnt")
    c.kill("KILL")
    c.wait_status("stopped")
    c.delete()
    stopped = _records(host_log)[4:]
    assert [r[0] for r in stopped] == ["poststop"]
    assert stopped[0][4]["status"] == "stopped" and stopped[0][1] == _ns(me, "mnt")


def test_hook_args_env_and_order(runtime, tmp_path):
    log = tmp_path / "log"
    config = runtime.config(["true"])
    config["hooks"] = {"createRuntime": [
        {"path": "/bin/sh", "args": ["sh", "-c", f'echo "one $0 $FOO" >> {log}', "arg0"], "env": ["FOO=bar"]},
        {"path": "/bin/sh", "args": ["sh", "-c", f'echo two >> {log}']},
    ]}
    c = runtime.container(config)
    assert log.read_text() == "one arg0 bar\ntwo\n"
    c.delete()


@pytest.mark.parametrize("kind", ["prestart", "createRuntime", "createContainer"])
def test_failing_create_hook_fails_create_and_undoes(runtime, tmp_path, kind):
    config = runtime.config(["true"])
    config["hooks"] = {kind: [{"path": "/bin/sh", "args": ["sh", "-c", "echo broken >&2; exit 3"]}]}
    c = runtime.container(config, create=False)
    cp = c.create(check=False)
    assert cp.returncode == 1, cp
    assert c.leftovers() == []


def test_hook_timeout(runtime):
    config = runtime.config(["true"])
    config["hooks"] = {"createRuntime": [{"path": "/bin/sleep", "args": ["sleep", "100"], "timeout": 1}]}
    c = runtime.container(config, create=False)
    cp = c.create(check=False)
    assert cp.returncode == 1
    assert c.leftovers() == []


@pytest.mark.pyrunc_only
def test_failing_start_hooks_fail_start_and_undo(runtime, tmp_path):
    for kind in ("startContainer", "poststart"):
        config = runtime.config(["sleep", "1000"])
        config["hooks"] = {kind: [{"path": "/bin/sh", "args": ["sh", "-c", "exit 4"]}]}
        c = runtime.container(config)
        cp = c.start(check=False)
        assert cp.returncode == 1 and "exit status 4" in cp.stderr, cp
        assert c.leftovers() == [], kind


@pytest.mark.runc_lacks("runc 1.1.5 stops at the first failing poststop hook")
def test_poststop_failure_is_a_warning_and_the_rest_run(runtime, tmp_path):
    log = tmp_path / "log"
    config = runtime.config(["true"])
    config["hooks"] = {"poststop": [
        {"path": "/bin/sh", "args": ["sh", "-c", "exit 5"]},
        {"path": "/bin/sh", "args": ["sh", "-c", f"echo ran >> {log}"]},
    ]}
    c = runtime.container(config)
    c.start()
    c.wait_status("stopped")
    c.delete()
    assert log.read_text() == "ran\n"
    assert c.leftovers() == []


@pytest.mark.pyrunc_only
def test_features_lists_hooks(runtime):
    assert set(json.loads(runtime.run("features").stdout)["hooks"]) == set(KINDS)


@pytest.mark.parametrize("kind", ["createRuntime", "createContainer"])
def test_failed_create_runs_poststop_hooks(runtime, tmp_path, kind):
    """runtime-spec: a failing create hook stops the container and "continues the lifecycle at step
    12" (delete), whose last step runs the poststop hooks: they may undo what prestart/createRuntime
    set up (a network, a device). runc does the same."""
    log = tmp_path / "poststop.log"
    config = runtime.config(["true"])
    config["hooks"] = {
        kind: [{"path": "/bin/sh", "args": ["sh", "-c", "exit 3"]}],
        "poststop": [_recorder("poststop", log)],
    }
    c = runtime.container(config, create=False)
    cp = c.create(check=False)
    assert cp.returncode == 1, cp
    assert c.leftovers() == []
    records = _records(log)
    assert [r[0] for r in records] == ["poststop"]
    assert records[0][4]["id"] == c.id and records[0][4]["status"] == "stopped"


def test_create_failing_before_any_hook_runs_poststop(runtime, tmp_path):
    """Also when create fails on its own (no such executable), as runc's destroy does."""
    log = tmp_path / "poststop.log"
    config = runtime.config(["/no/such/binary"])
    config["hooks"] = {"poststop": [_recorder("poststop", log)]}
    c = runtime.container(config, create=False)
    assert c.create(check=False).returncode == 1
    assert c.leftovers() == []
    assert [r[0] for r in _records(log)] == ["poststop"]


def test_hook_without_env_inherits_as_runc(runtime, tmp_path):
    """A hook without `env` runs as runc runs it (an exec.Cmd whose Env is nil inherits its caller's
    environment): the runtime's hooks (prestart, createRuntime, poststart, poststop) see the runtime's
    environment; the hooks init runs (createContainer, startContainer) see the container process's
    environment, init's own since runc sets it up first. `"env": []` is an empty environment."""
    log = tmp_path / "env.log"
    config = runtime.config(["sleep", "1000"])
    config["process"]["env"] = ["PATH=/bin:/usr/bin", "MARKER_PROC=process-env"]

    def recorder(kind, path):
        return {"path": "/bin/sh", "args": ["sh", "-c", f'echo "{kind} ${{MARKER_RT-}} ${{MARKER_PROC-}}" >> {path}']}
    config["hooks"] = {kind: [recorder(kind, log)] for kind in KINDS}
    config["hooks"]["startContainer"] = [recorder("startContainer", "/shared/env.log")]
    config["hooks"]["createRuntime"].append(dict(recorder("createRuntime-empty", log), env=[]))
    env = dict(os.environ, MARKER_RT="runtime-env")
    c = runtime.container(config, create=False, shared=True)
    c.create(env=env)
    c.start(env=env)
    c.wait_file("env.log")
    c.kill("KILL")
    c.wait_status("stopped")
    c.runtime.run("delete", c.id, env=env)
    seen = {line.split(" ", 1)[0]: line.rstrip("\n").split(" ")[1:] for line in open(log)}
    with open(c.path("env.log")) as f:
        seen.update({line.split(" ", 1)[0]: line.rstrip("\n").split(" ")[1:] for line in f})
    runtime_env, process_env = ["runtime-env", ""], ["", "process-env"]
    assert seen == {"prestart": runtime_env, "createRuntime": runtime_env, "createRuntime-empty": ["", ""],
                    "createContainer": process_env, "startContainer": process_env,
                    "poststart": runtime_env, "poststop": runtime_env}, seen
