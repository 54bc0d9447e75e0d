"""cli/__init__.py main(): `python -m pyrunc` in a subprocess, as managers run it."""
import json
import os
import re
import subprocess
import sys

import pytest

RUNTIME = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "runtime")


def pyrunc(*argv, cwd=None):
    env = dict(os.environ, PYTHONPATH=RUNTIME)
    return subprocess.run([sys.executable, "-m", "pyrunc", *argv], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=30)


def test_version():
    cp = pyrunc("--version")
    assert cp.returncode == 0 and cp.stderr == ""
    lines = cp.stdout.splitlines()
    assert lines[0].startswith("pyrunc version ")
    assert "spec: 1.3.0" in lines
    assert any(line.startswith("commit: ") for line in lines)
    assert cp.stdout.endswith("\n")


def test_version_short_alias():
    cp = pyrunc("-v")
    assert cp.returncode == 0 and cp.stdout.splitlines()[0].startswith("pyrunc version ")


@pytest.mark.parametrize("argv", [["--help"], ["-h"], [], ["help"]])
def test_help(argv):
    cp = pyrunc(*argv)
    assert cp.returncode == 0 and cp.stderr == ""
    assert cp.stdout.startswith("NAME:\n   pyrunc - ")
    assert "COMMANDS:" in cp.stdout and "GLOBAL OPTIONS:" in cp.stdout
    for verb in ("create", "start", "run", "state", "kill", "delete", "list", "features", "spec"):
        assert re.search(rf"^   {verb}\s", cp.stdout, re.M), verb
    assert "--criu" not in cp.stdout  # hidden


def test_verb_help():
    cp = pyrunc("state", "--help")
    assert cp.returncode == 0
    assert cp.stdout.startswith("NAME:\n   pyrunc state - output the state of a container\n")
    assert pyrunc("help", "state").stdout == cp.stdout


def test_unknown_command():
    cp = pyrunc("bogus")
    assert cp.returncode == 1 and cp.stdout == ""
    assert "No help topic for 'bogus'" in cp.stderr
    assert "Traceback" not in cp.stderr


def test_unknown_global_flag():
    cp = pyrunc("--nope", "state", "x")
    assert cp.returncode == 1
    assert cp.stderr == "pyrunc: flag provided but not defined: --nope\n"


def test_unknown_verb_flag():
    cp = pyrunc("--root", "/tmp/pyrunc-test-unused", "state", "--nope", "x")
    assert cp.returncode == 1
    assert "flag provided but not defined for state: --nope" in cp.stderr
    assert "Traceback" not in cp.stderr


def test_global_flags_before_verb_json_log(tmp_path):
    root, log = tmp_path / "root", tmp_path / "log.json"
    cp = pyrunc("--root", str(root), "--log", str(log), "--log-format", "json", "state", "nosuch")
    assert cp.returncode == 1 and cp.stdout == ""
    # with a log file, the error also goes to stderr, bare (as runc)
    assert cp.stderr == "container nosuch does not exist\n"
    lines = log.read_text().splitlines()
    assert len(lines) == 1
    entry = json.loads(lines[0])
    assert list(entry) == ["level", "msg", "time"]
    assert entry["level"] == "error" and entry["msg"] == "container nosuch does not exist"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)", entry["time"])
    assert not root.exists()  # a read-only verb creates no state root


def test_log_file_is_relative_to_cwd_and_appended(tmp_path):
    for _ in range(2):
        cp = pyrunc("--root", str(tmp_path / "root"), "--log", "rel.log", "--log-format=json", "state", "x",
                    cwd=tmp_path)
        assert cp.returncode == 1
    lines = (tmp_path / "rel.log").read_text().splitlines()
    assert [json.loads(line)["msg"] for line in lines] == ["container x does not exist"] * 2


def test_text_log_to_stderr(tmp_path):
    cp = pyrunc("--root", str(tmp_path), "state", "nosuch")
    assert cp.returncode == 1
    assert re.fullmatch(r'time="[^"]+" level=error msg="container nosuch does not exist"\n', cp.stderr)


def test_invalid_log_format(tmp_path):
    cp = pyrunc("--root", str(tmp_path), "--log-format", "xml", "state", "x")
    assert cp.returncode == 1
    assert cp.stderr == "pyrunc: invalid log-format: xml\n"


@pytest.mark.parametrize("root", ["/", ""])
def test_root_slash_refused(root):
    cp = pyrunc("--root", root, "state", "x")
    assert cp.returncode == 1
    assert "option --root argument must be a non-root path" in cp.stderr
    assert "Traceback" not in cp.stderr


def test_missing_container_id(tmp_path):
    cp = pyrunc("--root", str(tmp_path), "state")
    assert cp.returncode == 1
    assert 'msg="\\"pyrunc state\\" requires a container id argument"' in cp.stderr


def test_invalid_container_id(tmp_path):
    cp = pyrunc("--root", str(tmp_path), "state", "../x")
    assert cp.returncode == 1
    assert "invalid container id '../x'" in cp.stderr and "Traceback" not in cp.stderr


def test_global_flag_value_missing():
    cp = pyrunc("--root")
    assert cp.returncode == 1 and cp.stderr == "pyrunc: flag needs an argument: --root\n"


def test_state_of_a_saved_container(tmp_path):
    # the whole read path: store -> derive (init long gone: stopped, pid 0) -> indented JSON
    from pyrunc.state.store import StateStore
    store = StateStore(str(tmp_path))
    store.create("c1")
    store.save("c1", {"ociVersion": "1.3.0", "pid": 999999999, "init_start_time": 1, "bundle": "/b",
                      "rootfs": "/b/rootfs", "created": "2024-01-01T00:00:00Z", "annotations": {"a": "b"}})
    cp = pyrunc("--root", str(tmp_path), "state", "c1")
    assert cp.returncode == 0, cp.stderr
    view = json.loads(cp.stdout)
    assert view == {"ociVersion": "1.3.0", "id": "c1", "pid": 0, "status": "stopped", "bundle": "/b",
                    "rootfs": "/b/rootfs", "created": "2024-01-01T00:00:00Z", "annotations": {"a": "b"},
                    "owner": "root" if os.getuid() == 0 else view["owner"]}
    assert cp.stdout == json.dumps(view, indent=2) + "\n"


def test_unopenable_log_file(tmp_path):
    log = tmp_path / "missing" / "log.json"
    cp = pyrunc("--root", str(tmp_path), "--log", str(log), "state", "x")
    assert cp.returncode == 1
    assert cp.stderr == f"pyrunc: cannot open log file {log}: no such file or directory\n"


def test_log_file_created_even_on_success(tmp_path):
    log = tmp_path / "log.json"
    cp = pyrunc("--log", str(log), "--version")
    assert cp.returncode == 0 and log.read_bytes() == b""
