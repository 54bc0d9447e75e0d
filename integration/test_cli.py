"""The command line as managers call it: global flags, --flag=value, --log JSON, --version, --help,
errors without tracebacks, and the exact argv forms of containerd's go-runc, conmon and dockerd."""
import json
import os
import re
import subprocess

import pytest

from integration.helpers.runtime import assert_no_traceback, describe, execute, is_pyrunc, leftovers

RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


def _json_lines(path):
    entries = []
    with open(path) as f:
        for line in f:
            if line.strip():
                entries.append(json.loads(line))  # a non-JSON line breaks containerd's decoder
    return entries


def test_global_flags_before_subcommand(runtime):
    c = runtime.container(["true"])
    cp = runtime.raw("--root", runtime.root, "state", c.id)
    assert json.loads(cp.stdout)["id"] == c.id


def test_flag_equals_value_forms(runtime, tmp_path):
    c = runtime.bundle(["true"])
    log = tmp_path / "eq.log"
    pid_file = tmp_path / "eq.pid"
    runtime.raw(f"--root={runtime.root}", f"--log={log}", "--log-format=json", "create",
                f"--bundle={c.bundle}", f"--pid-file={pid_file}", c.id)
    assert pid_file.read_text() == str(c.pid)
    assert json.loads(runtime.raw(f"--root={runtime.root}", "state", c.id).stdout)["status"] == "created"
    _json_lines(log)
    runtime.raw(f"--root={runtime.root}", "delete", "--force", c.id)


def test_short_bundle_flag(runtime):
    c = runtime.bundle(["true"])
    runtime.run("create", "-b", c.bundle, c.id)
    runtime.run("delete", c.id)


def test_log_json_on_error(runtime, tmp_path):
    log = tmp_path / "log.json"
    missing = runtime.new_id()
    cp = runtime.run("--log", str(log), "--log-format", "json", "state", missing, check=False)
    assert cp.returncode == 1
    entries = _json_lines(log)
    errors = [e for e in entries if e.get("level") == "error"]
    assert errors, f"no error line in {entries}"
    last = errors[-1]
    assert set(last) >= {"level", "msg", "time"}
    assert "does not exist" in last["msg"]
    assert RFC3339.match(last["time"]), last["time"]
    # the message is on stderr too (runc's fatal() prints it when the log is a file)
    assert "does not exist" in cp.stderr


def test_log_json_appends(runtime, tmp_path):
    log = tmp_path / "append.json"
    for _ in range(2):
        runtime.run("--log", str(log), "--log-format", "json", "state", runtime.new_id(), check=False)
    assert len([e for e in _json_lines(log) if e["level"] == "error"]) == 2


def test_log_json_successful_lifecycle_stays_json(runtime, tmp_path):
    """containerd decodes the whole file: every line must be JSON, even with --debug."""
    log = tmp_path / "ok.json"
    c = runtime.bundle(["true"])
    base = ["--log", str(log), "--log-format", "json"]
    runtime.run(*base, "--debug", "create", "--bundle", c.bundle, c.id)
    runtime.run(*base, "start", c.id)
    c.wait_status("stopped")
    runtime.run(*base, "delete", c.id)
    for entry in _json_lines(log):
        assert {"level", "msg", "time"} <= set(entry)


def test_log_text_format(runtime, tmp_path):
    log = tmp_path / "log.txt"
    cp = runtime.run("--log", str(log), "--log-format", "text", "state", runtime.new_id(), check=False)
    assert cp.returncode == 1
    assert "does not exist" in log.read_text()


def test_bad_log_format_fails(runtime):
    cp = runtime.run("--log-format", "yaml", "list", check=False)
    assert cp.returncode != 0


def test_debug_flag(runtime):
    runtime.run("--debug", "list")


def test_rootless_flag_accepted(runtime):
    runtime.run("--rootless", "false", "list")
    runtime.run("--rootless=auto", "list")


def test_version(runtime):
    cp = runtime.raw("--version")
    lines = cp.stdout.splitlines()
    assert re.match(r"^\S+ version \S+", lines[0]), lines
    assert any(line.startswith("spec: ") for line in lines), lines
    assert runtime.raw("-v").stdout == cp.stdout


@pytest.mark.pyrunc_only
def test_version_pyrunc(runtime):
    import pyrunc
    lines = runtime.raw("--version").stdout.splitlines()
    assert lines[0].startswith("pyrunc version "), lines
    assert pyrunc.__version__ in lines[0]
    assert f"spec: {pyrunc.OCI_VERSION}" in lines


def test_help(runtime):
    for flag in ("--help", "-h"):
        cp = runtime.raw(flag)
        assert cp.returncode == 0
        for cmd in ("create", "start", "state", "kill", "delete", "run", "list", "spec", "features"):
            assert cmd in cp.stdout, f"{cmd} missing from {flag} output"


def test_unknown_command(runtime):
    cp = runtime.run("no-such-command", check=False)
    assert cp.returncode != 0
    assert "no-such-command" in cp.stderr + cp.stdout


@pytest.mark.pyrunc_only
def test_unknown_command_exit_1(runtime):
    cp = runtime.fail("no-such-command")
    assert "no-such-command" in cp.stderr


def test_unknown_flag(runtime):
    cp = runtime.run("state", "--no-such-flag", "x", check=False)
    assert cp.returncode == 1
    assert "no-such-flag" in cp.stderr
    cp = runtime.run("--no-such-global", "list", check=False)
    assert cp.returncode != 0
    assert "no-such-global" in cp.stderr


@pytest.mark.parametrize("args", [["state"], ["start"], ["kill"], ["delete"], ["create"], ["state", "a", "b"]])
def test_wrong_argument_count(runtime, args):
    cp = runtime.run(*args, check=False)
    assert cp.returncode == 1, describe(cp)
    assert cp.stderr.strip()


def test_no_traceback_on_errors(runtime, tmp_path):
    """A sweep of error cases: none may print a Python traceback (run() asserts it for each)."""
    id = runtime.new_id()
    cases = [
        ["state", id], ["start", id], ["kill", id], ["kill", id, "KILL"], ["delete", id], ["list", "--format", "x"],
        ["create", "--bundle", str(tmp_path / "nope"), id], ["run", "--bundle", str(tmp_path / "nope"), id],
        ["kill", id, "NOSIG"], ["kill", id, "-1"], ["kill", id, "99999"], ["create", "--pid-file"],
        ["spec", "--bundle", str(tmp_path / "nope")], ["--root", "/proc/version", "list"],
        ["--log", "/proc/no/such/dir/log", "list"], ["run", "--detach", "--bundle"],
    ]
    for args in cases:
        cp = runtime.run(*args, check=False)
        assert cp.returncode != 0, describe(cp)


# --- argv forms of the callers ---------------------------------------------------------------------

def _go_runc(runtime, log, *args, **kw):
    """containerd's go-runc prefix: --root R --log L --log-format json <verb> ..."""
    return runtime.raw("--root", runtime.root, "--log", str(log), "--log-format", "json", *args, **kw)


@pytest.mark.parametrize("no_pivot", [False, True])
def test_containerd_go_runc_argv(runtime, tmp_path, no_pivot):
    c = runtime.bundle(["sh", "-c", "trap 'exit 0' TERM; touch /shared/ready; "
                                    "while :; do sleep 1000 & wait $!; done"], shared=True)
    log = os.path.join(c.bundle, "log.json")
    pid_file = os.path.join(c.bundle, "init.pid")
    extra = ["--no-pivot"] if no_pivot else []
    _go_runc(runtime, log, "create", "--bundle", c.bundle, "--pid-file", pid_file, *extra, "--no-new-keyring",
             c.id)
    with open(pid_file) as f:
        pid = int(f.read())
    _go_runc(runtime, log, "start", c.id)
    c.wait_file("ready")
    st = json.loads(_go_runc(runtime, log, "state", c.id).stdout)
    assert st["status"] == "running" and st["pid"] == pid
    pids = json.loads(_go_runc(runtime, log, "ps", "--format", "json", c.id).stdout)
    assert pid in pids
    _go_runc(runtime, log, "kill", c.id, "15")
    c.wait_status("stopped")
    _go_runc(runtime, log, "delete", c.id)
    json.loads(_go_runc(runtime, log, "features").stdout)
    _json_lines(log)


def test_containerd_kill_all_and_force_delete(runtime, tmp_path):
    c = runtime.bundle(["sleep", "1000"])
    log = os.path.join(c.bundle, "log.json")
    _go_runc(runtime, log, "create", "--bundle", c.bundle, "--pid-file", os.path.join(c.bundle, "init.pid"), c.id)
    _go_runc(runtime, log, "start", c.id)
    _go_runc(runtime, log, "kill", "--all", c.id, "9")
    c.wait_status("stopped")
    _go_runc(runtime, log, "delete", "--force", c.id)
    assert c.leftovers() == []


def test_containerd_create_error_surfaces_in_log(runtime, tmp_path):
    c = runtime.bundle(["no-such-binary"])
    log = os.path.join(c.bundle, "log.json")
    cp = _go_runc(runtime, log, "create", "--bundle", c.bundle, "--pid-file", os.path.join(c.bundle, "init.pid"),
                  c.id, check=False)
    assert cp.returncode == 1
    errors = [e for e in _json_lines(log) if e["level"] == "error"]
    assert "executable file not found in $PATH" in errors[-1]["msg"]
    assert not os.path.exists(os.path.join(c.bundle, "init.pid"))


def test_conmon_argv(runtime, tmp_path):
    """conmon: [runtime-args] create --bundle B --pid-file P --no-new-keyring ID; then state, kill, delete."""
    c = runtime.bundle(["sleep", "1000"])
    pid_file = tmp_path / "conmon.pid"
    runtime.raw("--root", runtime.root, "create", "--bundle", c.bundle, "--pid-file", str(pid_file),
                "--no-new-keyring", c.id)
    assert pid_file.read_text() == str(c.pid)
    runtime.raw("--root", runtime.root, "start", c.id)
    st = json.loads(runtime.raw("--root", runtime.root, "state", c.id).stdout)
    assert st["status"] == "running"
    runtime.raw("--root", runtime.root, "kill", c.id, "9")
    c.wait_status("stopped")
    runtime.raw("--root", runtime.root, "delete", "--force", c.id)
    assert c.leftovers() == []


def test_conmon_argv_with_runtime_args_log(runtime, tmp_path):
    """podman passes --log-format=json and --log as runtime args ahead of the verb."""
    c = runtime.bundle(["true"])
    runtime.raw(f"--log-format=json", f"--log={tmp_path / 'podman.log'}", "--root", runtime.root, "create",
                "--bundle", c.bundle, "--pid-file", str(tmp_path / "p.pid"), "--no-new-keyring", c.id)
    runtime.raw("--root", runtime.root, "delete", "--force", c.id)


def _run_with_fd3(argv, path):
    """Run argv with `path` open on fd 3 (set up by a shell, never touching the test's own fds)."""
    cp = execute(["sh", "-c", 'exec "$@" 3<"$FD3_FILE"', "sh", *argv],
                 env=dict(os.environ, FD3_FILE=str(path)))
    assert_no_traceback(cp)
    return cp


def test_preserve_fds(runtime, tmp_path):
    """--preserve-fds N hands fds 3..3+N-1 to the container (containerd's extra files)."""
    data = tmp_path / "fd3"
    data.write_text("through-fd-3\n")
    c = runtime.bundle(["sh", "-c", "cat <&3"])
    cp = _run_with_fd3(runtime.argv("run", "--preserve-fds", "1", "--bundle", c.bundle, c.id), data)
    assert cp.returncode == 0, describe(cp)
    assert cp.stdout == "through-fd-3\n"


def test_fds_not_preserved_by_default(runtime, tmp_path):
    data = tmp_path / "fd3"
    data.write_text("x")
    c = runtime.bundle(["sh", "-c", "cat <&3 && echo LEAKED; true"])
    cp = _run_with_fd3(runtime.argv("run", "--bundle", c.bundle, c.id), data)
    assert cp.returncode == 0, describe(cp)
    assert "LEAKED" not in cp.stdout


def test_systemd_cgroup_without_systemd(runtime):
    """No systemd on this machine: --systemd-cgroup create fails clearly and leaves nothing."""
    assert not os.path.isdir("/run/systemd/system"), "systemd is running here: the test premise is wrong"
    c = runtime.bundle(["true"], cgroups_path=f"system.slice:pyrunc-test:{runtime.new_id()}")
    cp = runtime.run("--systemd-cgroup", "create", "--bundle", c.bundle, c.id, check=False)
    assert cp.returncode == 1, describe(cp)
    assert "systemd" in cp.stderr
    assert os.listdir(runtime.root) == []


def test_is_pyrunc_consistent():
    out = execute([os.environ.get("PYRUNC_TEST_RUNTIME") or "/nonexistent", "--version"]).stdout \
        if os.environ.get("PYRUNC_TEST_RUNTIME") else None
    if out is not None:
        assert is_pyrunc() == out.startswith("pyrunc")


@pytest.mark.pyrunc_only
def test_default_root_is_run_pyrunc(runtime):
    made_root = not os.path.exists("/run/pyrunc")
    c = runtime.bundle(["true"])
    try:
        runtime.raw("create", "--bundle", c.bundle, c.id)
        assert os.path.isdir(f"/run/pyrunc/{c.id}")
        assert json.loads(runtime.raw("--root", "/run/pyrunc", "state", c.id).stdout)["status"] == "created"
    finally:
        runtime.raw("delete", "--force", c.id, check=False)
        if made_root:
            try:
                os.rmdir("/run/pyrunc")  # only if empty: what else is there is someone else's
            except OSError:
                pass
    assert leftovers("/run/pyrunc", c.id, c.bundle, c.cgroups_path) == []


def _imported_modules(stderr):
    return [line.rsplit("|", 1)[-1].strip() for line in stderr.splitlines() if line.startswith("import time:")]


@pytest.mark.pyrunc_only
def test_commands_without_config_do_not_import_jsonschema(runtime):
    """state, start, kill, delete and list never read config.json: they must not pay jsonschema."""
    c = runtime.container(["sleep", "1000"])
    env = dict(os.environ, PYTHONPROFILEIMPORTTIME="1")
    for args in (["state", c.id], ["list"], ["list", "--format", "json"], ["start", c.id], ["state", c.id],
                 ["kill", c.id, "KILL"], ["delete", "--force", c.id], ["state", c.id]):
        cp = runtime.run(*args, check=False, env=env)
        modules = _imported_modules(cp.stderr)
        assert modules, f"PYTHONPROFILEIMPORTTIME had no effect on {args}: {cp.stderr[:500]}"
        heavy = [m for m in modules if m.split(".")[0] in ("jsonschema", "fastjsonschema", "referencing")]
        assert not heavy, f"{args} imported {heavy[:5]}"


@pytest.mark.pyrunc_only
@pytest.mark.parametrize("verb", ["create", "run"])
def test_unprivileged_create_is_a_clear_error(runtime, tmp_path, verb):
    """Rootless containers are not built yet: an unprivileged caller gets that said, not an EACCES
    on some cgroup or /proc path, and nothing is left behind."""
    c = runtime.bundle(["true"])
    root = tmp_path / "nobody-root"
    os.makedirs(root)
    os.chown(root, 65534, 65534)
    argv = [runtime.binary, "--root", str(root), verb, "-b", c.bundle, c.id]
    cp = subprocess.run(argv, user=65534, group=65534, extra_groups=[], capture_output=True, text=True,
                        stdin=subprocess.DEVNULL, timeout=60)
    assert cp.returncode == 1, cp
    assert "rootless containers are not supported yet: create needs root (running as uid 65534)" in cp.stderr
    assert "Traceback" not in cp.stderr
    assert os.listdir(root) == []
