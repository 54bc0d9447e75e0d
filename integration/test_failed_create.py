"""A failed create (or run) exits 1, says why, and leaves nothing: no state dir, mount, cgroup or
process (checked right after the failure, before any cleanup)."""
import json
import os
import resource

import pytest

from integration.helpers import mountinfo
from integration.helpers.runtime import bind, leftovers

VERBS = ["create", "run"]


def _fail(runtime, c, verb, id=None):
    id = id or c.id
    cp = runtime.fail(verb, "--bundle", c.bundle, id)
    left = leftovers(runtime.root, id, c.bundle, c.cgroups_path)
    assert left == [], f"failed {verb} left: {left}\n{cp.stderr}"
    assert os.listdir(runtime.root) == [], f"failed {verb} left entries in --root: {os.listdir(runtime.root)}"
    return cp


def _config(runtime, args=("true",)):
    return runtime.config(list(args))


@pytest.mark.parametrize("verb", VERBS)
def test_bad_mount_source(runtime, verb, tmp_path):
    missing = str(tmp_path / "no-such-source-dir")
    config = _config(runtime)
    bind(config, missing, "/mnt/x", ["bind", "ro"])
    cp = _fail(runtime, runtime.bundle(config), verb)
    assert missing in cp.stderr


@pytest.mark.parametrize("verb", VERBS)
def test_bad_mount_type(runtime, verb):
    config = _config(runtime)
    config["mounts"].append({"destination": "/mnt/x", "type": "nosuchfs", "source": "none"})
    cp = _fail(runtime, runtime.bundle(config), verb)
    assert "/mnt/x" in cp.stderr


@pytest.mark.parametrize("verb", VERBS)
def test_cwd_is_a_file(runtime, verb):
    config = _config(runtime)
    config["process"]["cwd"] = "/bin/busybox"
    cp = _fail(runtime, runtime.bundle(config), verb)
    assert "/bin/busybox" in cp.stderr


@pytest.mark.parametrize("verb", VERBS)
def test_cwd_under_a_file(runtime, verb):
    config = _config(runtime)
    config["process"]["cwd"] = "/etc/passwd/sub"
    cp = _fail(runtime, runtime.bundle(config), verb)
    assert "/etc/passwd" in cp.stderr


@pytest.mark.pyrunc_only
def test_cwd_error_names_step_and_path(runtime):
    config = _config(runtime)
    config["process"]["cwd"] = "/etc/passwd/sub"
    cp = _fail(runtime, runtime.bundle(config), "create")
    assert "/etc/passwd/sub" in cp.stderr and "cwd" in cp.stderr, cp.stderr


@pytest.mark.parametrize("verb", VERBS)
def test_relative_cwd(runtime, verb):
    config = _config(runtime)
    config["process"]["cwd"] = "tmp"
    _fail(runtime, runtime.bundle(config), verb)


@pytest.mark.parametrize("verb", VERBS)
def test_missing_binary(runtime, verb):
    cp = _fail(runtime, runtime.bundle(_config(runtime, ["no-such-binary", "arg"])), verb)
    assert "executable file not found in $PATH" in cp.stderr, cp.stderr
    assert "no-such-binary" in cp.stderr


def test_missing_binary_absolute(runtime):
    cp = _fail(runtime, runtime.bundle(_config(runtime, ["/bin/no-such-binary"])), "create")
    assert "/bin/no-such-binary" in cp.stderr
    assert "no such file or directory" in cp.stderr.lower()


def test_binary_not_executable(runtime):
    c = runtime.bundle(_config(runtime, ["/etc/passwd"]))
    cp = _fail(runtime, c, "create")
    assert "/etc/passwd" in cp.stderr


@pytest.mark.parametrize("verb", VERBS)
def test_malformed_json(runtime, verb):
    c = runtime.bundle(_config(runtime))
    with open(os.path.join(c.bundle, "config.json"), "w") as f:
        f.write('{"ociVersion": "1.0.2", "process": {')
    _fail(runtime, c, verb)


@pytest.mark.pyrunc_only
def test_malformed_json_message(runtime):
    c = runtime.bundle(_config(runtime))
    with open(os.path.join(c.bundle, "config.json"), "w") as f:
        f.write('{"ociVersion": "1.0.2", "process": {')
    cp = _fail(runtime, c, "create")
    assert "config.json" in cp.stderr


@pytest.mark.parametrize("verb", VERBS)
def test_schema_violation_empty_args(runtime, verb):
    config = _config(runtime)
    config["process"]["args"] = []
    _fail(runtime, runtime.bundle(config), verb)


@pytest.mark.pyrunc_only
def test_schema_violation_message(runtime):
    config = _config(runtime)
    config["process"]["args"] = []
    cp = _fail(runtime, runtime.bundle(config), "create")
    # jsonschema >= 4.21 words minItems 1 as "should be non-empty", older ones "is too short".
    assert "process.args" in cp.stderr and ("too short" in cp.stderr or "non-empty" in cp.stderr), cp.stderr


def test_schema_violation_wrong_type(runtime):
    config = _config(runtime)
    config["process"]["args"] = "not-a-list"
    _fail(runtime, runtime.bundle(config), "create")


@pytest.mark.pyrunc_only
def test_schema_violation_wrong_type_message(runtime):
    config = _config(runtime)
    config["process"]["args"] = "not-a-list"
    cp = _fail(runtime, runtime.bundle(config), "create")
    assert "process.args" in cp.stderr, cp.stderr


def test_unknown_rlimit_type(runtime):
    config = _config(runtime)
    config["process"]["rlimits"] = [{"type": "RLIMIT_NOSUCH", "soft": 1, "hard": 1}]
    cp = _fail(runtime, runtime.bundle(config), "create")
    assert "RLIMIT_NOSUCH" in cp.stderr


@pytest.mark.parametrize("verb", VERBS)
def test_rlimit_hard_raise(runtime, verb):
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    config = _config(runtime)
    config["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": hard + 1, "hard": hard + 1}]
    _fail(runtime, runtime.bundle(config), verb)


def test_missing_rootfs(runtime):
    config = _config(runtime)
    config["root"]["path"] = "no-such-rootfs"
    cp = _fail(runtime, runtime.bundle(config), "create")
    assert "no-such-rootfs" in cp.stderr


@pytest.mark.parametrize("verb", VERBS)
def test_bundle_without_config(runtime, verb):
    c = runtime.bundle(_config(runtime))
    os.unlink(os.path.join(c.bundle, "config.json"))
    cp = _fail(runtime, c, verb)
    assert "config.json" in cp.stderr


def test_bundle_dir_missing(runtime, tmp_path):
    c = runtime.bundle(_config(runtime), create_rootfs=False)
    missing = str(tmp_path / "no-such-bundle")
    cp = runtime.fail("create", "--bundle", missing, c.id)
    assert leftovers(runtime.root, c.id, missing, c.cgroups_path) == []
    assert "no-such-bundle" in cp.stderr


def test_duplicate_id(runtime):
    first = runtime.container(["sh", "-c", "touch /shared/ran"], shared=True)
    pid = first.pid
    second = runtime.bundle(_config(runtime))
    cp = runtime.fail("create", "--bundle", second.bundle, first.id)
    assert "exist" in cp.stderr
    st = first.state()
    assert st["status"] == "created" and st["pid"] == pid
    assert st["bundle"] == os.path.realpath(first.bundle)
    for mp, _, _ in mountinfo.cgroup_hierarchies():
        assert os.path.isdir(os.path.join(mp, first.cgroups_path.lstrip("/"))), "the first one's cgroup went"
    first.start()
    first.wait_file("ran")
    first.wait_status("stopped")
    first.delete()
    assert leftovers(runtime.root, first.id, second.bundle, second.cgroups_path) == []


def test_duplicate_id_run(runtime):
    first = runtime.container(["sleep", "1000"])
    second = runtime.bundle(_config(runtime))
    runtime.fail("run", "--bundle", second.bundle, first.id)
    assert first.status == "created"
    first.delete()


@pytest.mark.parametrize("bad_id", ["a/b", "../escape", "/abs", "..", "."])
def test_invalid_id(runtime, bad_id):
    c = runtime.bundle(_config(runtime))
    runtime.fail("create", "--bundle", c.bundle, bad_id)
    assert os.listdir(runtime.root) == []
    assert not os.path.exists(os.path.join(os.path.dirname(runtime.root), "escape"))
    assert leftovers(runtime.root, c.id, c.bundle, c.cgroups_path) == []


def test_empty_id(runtime):
    c = runtime.bundle(_config(runtime))
    runtime.fail("create", "--bundle", c.bundle, "")
    assert os.listdir(runtime.root) == []


def test_missing_id(runtime):
    c = runtime.bundle(_config(runtime))
    runtime.fail("create", "--bundle", c.bundle)
    assert os.listdir(runtime.root) == []


def test_failure_is_logged_as_json(runtime, tmp_path):
    """The failure reason is the last error line of --log (what containerd's shim reports)."""
    log = tmp_path / "log.json"
    config = _config(runtime, ["no-such-binary"])
    c = runtime.bundle(config)
    cp = runtime.run("--log", str(log), "--log-format", "json", "create", "--bundle", c.bundle, c.id,
                     check=False, root=True)
    assert cp.returncode == 1
    entries = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    errors = [e for e in entries if e["level"] == "error"]
    assert errors, entries
    assert "executable file not found in $PATH" in errors[-1]["msg"]
    assert leftovers(runtime.root, c.id, c.bundle, c.cgroups_path) == []
