"""state/store.py and state/pidfile.py: the state directory and --pid-file."""
import json
import os
import stat

import pytest

from pyrunc.errors import ContainerExists, ContainerNotFound, InvalidID, PyruncError, StepError
from pyrunc.state.pidfile import write_pid_file
from pyrunc.state.store import StateStore, validate_id


@pytest.mark.parametrize("cid", ["a", "A", "0", "abc-DEF_123", "a.b", "a+b", "-", "_", "+", "...", ".a", "a..",
                                 "x" * 1024, "9f2c7a1e" * 8])
def test_validate_id_accepts(cid):
    validate_id(cid)


@pytest.mark.parametrize("cid,why", [
    ("", "must not be empty"),
    (".", "only [a-zA-Z0-9_+.-] allowed, and not '.' or '..'"),
    ("..", "only [a-zA-Z0-9_+.-] allowed, and not '.' or '..'"),
    ("a/b", "only [a-zA-Z0-9_+.-] allowed, and not '.' or '..'"),
    ("/abs", "only [a-zA-Z0-9_+.-] allowed, and not '.' or '..'"),
    ("../x", "only [a-zA-Z0-9_+.-] allowed, and not '.' or '..'"),
    ("a b", "only [a-zA-Z0-9_+.-] allowed, and not '.' or '..'"),
    (" a", "only [a-zA-Z0-9_+.-] allowed, and not '.' or '..'"),
    ("a\n", "only [a-zA-Z0-9_+.-] allowed, and not '.' or '..'"),
    ("a\x00", "only [a-zA-Z0-9_+.-] allowed, and not '.' or '..'"),
    ("é", "only [a-zA-Z0-9_+.-] allowed, and not '.' or '..'"),
    ("a:b", "only [a-zA-Z0-9_+.-] allowed, and not '.' or '..'"),
    ("a*", "only [a-zA-Z0-9_+.-] allowed, and not '.' or '..'"),
    ("x" * 1025, "longer than 1024 characters"),
])
def test_validate_id_rejects(cid, why):
    with pytest.raises(InvalidID) as e:
        validate_id(cid)
    assert str(e.value) == f"invalid container id {cid!r}: {why}"
    assert e.value.container_id == cid and e.value.exit_code == 1


def test_create_makes_root_and_dir(tmp_path):
    root = tmp_path / "a" / "root"
    store = StateStore(str(root))
    directory = store.create("c1")
    assert directory == str(root / "c1") == store.path("c1")
    assert stat.S_IMODE(os.stat(root).st_mode) & 0o077 == 0  # 0700 (under the umask)
    assert os.path.isdir(directory) and store.exists("c1") and not store.exists("c2")
    assert store.path("c1", "state.json") == str(root / "c1" / "state.json")


def test_create_is_exclusive(tmp_path):
    store = StateStore(str(tmp_path))
    store.create("c1")
    with pytest.raises(ContainerExists) as e:
        store.create("c1")
    assert str(e.value) == "container with id exists: c1"
    assert e.value.container_id == "c1"


def test_create_validates_id(tmp_path):
    store = StateStore(str(tmp_path / "root"))
    with pytest.raises(InvalidID):
        store.create("../escape")
    assert not (tmp_path / "escape").exists() and not (tmp_path / "root").exists()


def test_create_root_failure_is_a_step_error(tmp_path):
    (tmp_path / "file").write_text("")
    store = StateStore(str(tmp_path / "file" / "root"))
    with pytest.raises(StepError) as e:
        store.create("c1")
    assert str(e.value).startswith(f"create state root {tmp_path}/file/root: ")
    assert isinstance(e.value.cause, NotADirectoryError)


def test_load_missing(tmp_path):
    store = StateStore(str(tmp_path))
    with pytest.raises(ContainerNotFound) as e:
        store.load("nosuch")
    assert str(e.value) == "container nosuch does not exist"
    store.create("empty")  # a directory without state.json (create failed early): not found either
    with pytest.raises(ContainerNotFound) as e:
        store.load("empty")
    assert str(e.value) == "container empty does not exist"
    with pytest.raises(ContainerNotFound):
        StateStore(str(tmp_path / "no-root")).load("x")


def test_load_validates_id(tmp_path):
    with pytest.raises(InvalidID):
        StateStore(str(tmp_path)).load("../x")


@pytest.mark.parametrize("content,message", [
    (b"", "Expecting value: line 1 column 1 (char 0)"),
    (b'{"pid": 1', "Expecting ',' delimiter: line 1 column 10 (char 9)"),
    (b'{"pid": 1}garbage', "Extra data: line 1 column 11 (char 10)"),
])
def test_load_corrupted(tmp_path, content, message):
    store = StateStore(str(tmp_path))
    store.create("c1")
    (tmp_path / "c1" / "state.json").write_bytes(content)
    with pytest.raises(StepError) as e:
        store.load("c1")
    assert str(e.value) == f"read state {tmp_path}/c1/state.json: {message}"
    assert e.value.step == "read state"


def test_save_and_load(tmp_path):
    store = StateStore(str(tmp_path))
    store.create("c1")
    state = {"id": "c1", "pid": 42, "init_start_time": 123, "config": {"process": {"args": ["sh"]}},
             "annotations": {"é": "✓"}}
    store.save("c1", state)
    assert store.load("c1") == state
    assert json.loads((tmp_path / "c1" / "state.json").read_bytes()) == state
    assert sorted(os.listdir(tmp_path / "c1")) == ["state.json"]  # no .tmp left behind
    assert stat.S_IMODE(os.stat(tmp_path / "c1" / "state.json").st_mode) == 0o600


def test_save_replaces_atomically(tmp_path):
    store = StateStore(str(tmp_path))
    store.create("c1")
    store.save("c1", {"v": 1})
    path = tmp_path / "c1" / "state.json"
    keep = os.open(path, os.O_RDONLY)  # a reader holding the old file still sees it whole
    try:
        old_inode = os.fstat(keep).st_ino
        store.save("c1", {"v": 2, "more": "x" * 10000})
        assert os.stat(path).st_ino != old_inode  # a new file renamed over, not rewritten in place
        assert os.read(keep, 100) == b'{"v":1}'
    finally:
        os.close(keep)
    assert store.load("c1") == {"v": 2, "more": "x" * 10000}
    assert sorted(os.listdir(tmp_path / "c1")) == ["state.json"]


def test_save_overwrites_a_stale_tmp(tmp_path):
    store = StateStore(str(tmp_path))
    store.create("c1")
    (tmp_path / "c1" / "state.json.tmp").write_text("half a write from a crash" * 100)
    store.save("c1", {"v": 3})
    assert store.load("c1") == {"v": 3}
    assert sorted(os.listdir(tmp_path / "c1")) == ["state.json"]


def test_remove_is_idempotent(tmp_path):
    store = StateStore(str(tmp_path))
    store.create("c1")
    store.save("c1", {"v": 1})
    os.mkfifo(tmp_path / "c1" / "exec.fifo")
    (tmp_path / "c1" / "sub" / "deep").mkdir(parents=True)
    (tmp_path / "c1" / "sub" / "deep" / "f").write_text("x")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("x")
    os.symlink(outside, tmp_path / "c1" / "link")  # a symlink to a directory: unlinked, never followed
    store.remove("c1")
    assert not (tmp_path / "c1").exists() and not store.exists("c1")
    assert (outside / "keep").read_text() == "x"
    store.remove("c1")  # again
    store.remove("never-existed")
    StateStore(str(tmp_path / "no-root")).remove("x")


def test_ids(tmp_path):
    store = StateStore(str(tmp_path))
    assert store.ids() == []
    for cid in ("b", "a", "c-1"):
        store.create(cid)
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".lock").write_text("")
    (tmp_path / "file").write_text("")
    os.symlink(tmp_path / "missing", tmp_path / "dangling")
    assert store.ids() == ["a", "b", "c-1"]
    assert StateStore(str(tmp_path / "no-root")).ids() == []


# --pid-file


def test_pid_file(tmp_path):
    path = tmp_path / "pid"
    write_pid_file(str(path), 12345)
    assert path.read_bytes() == b"12345"  # decimal, no newline
    assert os.listdir(tmp_path) == ["pid"]  # the .pid temporary is gone


def test_pid_file_replaces_existing(tmp_path):
    path = tmp_path / "pid"
    path.write_text("99999999\n")
    write_pid_file(str(path), 7)
    assert path.read_bytes() == b"7"
    assert os.listdir(tmp_path) == ["pid"]


def test_pid_file_is_atomic(tmp_path):
    path = tmp_path / "pid"
    write_pid_file(str(path), 1)
    keep = os.open(path, os.O_RDONLY)
    try:
        inode = os.fstat(keep).st_ino
        write_pid_file(str(path), 2)
        assert os.stat(path).st_ino != inode  # renamed over, never truncated in place
        assert os.read(keep, 10) == b"1"
    finally:
        os.close(keep)


def test_pid_file_relative_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_pid_file("rel.pid", 3)
    assert (tmp_path / "rel.pid").read_bytes() == b"3"
    assert sorted(os.listdir(tmp_path)) == ["rel.pid"]


def test_pid_file_error_names_the_path(tmp_path):
    path = tmp_path / "missing-dir" / "pid"
    with pytest.raises(StepError) as e:
        write_pid_file(str(path), 1)
    assert str(e.value) == f"write pid file {path}: no such file or directory ({tmp_path}/missing-dir/.pid)"
    assert e.value.path == str(path) and isinstance(e.value.cause, FileNotFoundError)
    assert isinstance(e.value, PyruncError)


def test_pid_file_onto_a_directory_fails_and_cleans_up(tmp_path):
    (tmp_path / "pid").mkdir()
    with pytest.raises(StepError) as e:
        write_pid_file(str(tmp_path / "pid"), 1)
    assert str(e.value).startswith(f"write pid file {tmp_path}/pid: ")
    assert sorted(os.listdir(tmp_path)) == ["pid"]  # the temporary was removed


def test_pid_file_stale_temporary(tmp_path):
    # As runc: the temporary is opened O_EXCL, so a leftover ".pid" fails this write (and is removed).
    (tmp_path / ".pid").write_text("stale")
    with pytest.raises(StepError) as e:
        write_pid_file(str(tmp_path / "pid"), 5)
    assert str(e.value) == f"write pid file {tmp_path}/pid: file exists ({tmp_path}/.pid)"
    assert os.listdir(tmp_path) == []
    write_pid_file(str(tmp_path / "pid"), 5)
    assert (tmp_path / "pid").read_bytes() == b"5"
