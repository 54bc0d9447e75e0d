"""list: the table, --format json, --quiet, an empty or missing root."""
import json
import os

HEADER = ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]


def _rows(out):
    lines = out.splitlines()
    assert lines and lines[0].split() == HEADER, f"bad table header: {out!r}"
    return [line.split() for line in lines[1:] if line.strip()]


def test_list_empty_root(runtime):
    assert _rows(runtime.run("list").stdout) == []
    assert runtime.run("list", "--quiet").stdout.strip() == ""
    # runc 1.1.5 prints `null` for no containers; `[]` is just as good
    assert json.loads(runtime.run("list", "--format", "json").stdout) in (None, [])


def test_list_missing_root(runtime, tmp_path):
    missing = str(tmp_path / "no-such-root")
    cp = runtime.raw("--root", missing, "list")
    assert _rows(cp.stdout) == []


def test_list_table(runtime):
    created = runtime.container(["sleep", "1000"])
    running = runtime.container(["sleep", "1000"])
    running.start()
    stopped = runtime.container(["true"])
    stopped.start()
    stopped.wait_status("stopped")
    rows = {r[0]: r for r in _rows(runtime.run("list").stdout)}
    assert set(rows) == {created.id, running.id, stopped.id}
    assert rows[created.id][1] == str(created.pid)
    assert rows[created.id][2] == "created"
    assert rows[running.id][1] == str(running.pid)
    assert rows[running.id][2] == "running"
    assert rows[stopped.id][1] == "0"
    assert rows[stopped.id][2] == "stopped"
    for c in (created, running, stopped):
        assert rows[c.id][3] == os.path.realpath(c.bundle)
        assert rows[c.id][5] == "root"


def test_list_json(runtime):
    c = runtime.container(["sleep", "1000"])
    c.start()
    for args in (["--format", "json"], ["-f", "json"], ["--format=json"]):
        data = json.loads(runtime.run("list", *args).stdout)
        assert isinstance(data, list) and len(data) == 1
        entry = data[0]
        assert entry["id"] == c.id
        assert entry["pid"] == c.pid
        assert entry["status"] == "running"
        assert entry["bundle"] == os.path.realpath(c.bundle)
        assert isinstance(entry["created"], str) and entry["created"][:2] == "20"
        assert entry["owner"] == "root"
        assert "ociVersion" in entry


def test_list_format_table_explicit(runtime):
    c = runtime.container(["true"])
    rows = _rows(runtime.run("list", "--format", "table").stdout)
    assert [r[0] for r in rows] == [c.id]


def test_list_quiet(runtime):
    a = runtime.container(["true"])
    b = runtime.container(["true"])
    for flag in ("--quiet", "-q"):
        out = runtime.run("list", flag).stdout
        assert sorted(out.split()) == sorted([a.id, b.id])
        assert all(line.strip() in (a.id, b.id) for line in out.splitlines() if line.strip())


def test_list_bad_format_fails(runtime):
    runtime.fail("list", "--format", "yaml")
