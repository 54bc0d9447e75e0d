"""process/execpath.py: execvp's lookup with runc's error wording."""
import os

import pytest

from pyrunc.errors import ExecNotFound, PyruncError
from pyrunc.process.execpath import lookup


@pytest.fixture
def bins(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    for path, mode in ((a / "tool", 0o755), (b / "tool", 0o755), (b / "only-b", 0o700), (a / "noexec", 0o644),
                       (b / "noexec", 0o755), (a / "plain", 0o644)):
        path.write_text("#!/bin/sh\n")
        os.chmod(path, mode)
    (a / "isdir").mkdir(mode=0o755)
    (b / "isdir").write_text("")
    os.chmod(b / "isdir", 0o755)
    os.symlink("tool", a / "link")
    os.symlink("missing", a / "dangling")
    return tmp_path


def test_path_search_first_match_wins(bins):
    env = [f"PATH={bins}/a:{bins}/b"]
    assert lookup("tool", env) == f"{bins}/a/tool"
    assert lookup("only-b", env) == f"{bins}/b/only-b"
    assert lookup("tool", [f"PATH={bins}/b:{bins}/a"]) == f"{bins}/b/tool"


def test_path_search_skips_non_executables_and_directories(bins):
    env = [f"PATH={bins}/a:{bins}/b"]
    assert lookup("noexec", env) == f"{bins}/b/noexec"
    assert lookup("isdir", env) == f"{bins}/b/isdir"


def test_path_search_follows_symlinks(bins):
    assert lookup("link", [f"PATH={bins}/a"]) == f"{bins}/a/link"


def test_path_is_taken_from_env_last_one_wins(bins):
    env = ["HOME=/root", f"PATH={bins}/b", "TERM=xterm", f"PATH={bins}/a"]
    assert lookup("tool", env) == f"{bins}/a/tool"


@pytest.mark.parametrize("name", ["nosuch", "plain", "dangling"])
def test_not_found_in_path(bins, name):
    with pytest.raises(ExecNotFound) as e:
        lookup(name, [f"PATH={bins}/a:/nonexistent-dir"])
    assert str(e.value) == f'exec: "{name}": executable file not found in $PATH'
    assert e.value.name == name and isinstance(e.value, PyruncError)


def test_not_found_with_empty_path_entry_elsewhere(bins, monkeypatch):
    monkeypatch.chdir(bins / "a")
    # an empty PATH entry means the current directory, as in execvp and Go's LookPath
    assert lookup("tool", [f"PATH=/nonexistent-dir::{bins}/b"]) == "./tool"


def test_no_path_variable_searches_nothing(bins, monkeypatch):
    # Go's exec.LookPath (runc) splits an unset/empty PATH into no directories at all: a bare
    # name is never looked up in the current directory.
    monkeypatch.chdir(bins / "a")
    for env in ([], ["HOME=/"], ["PATH="]):
        with pytest.raises(ExecNotFound) as e:
            lookup("tool", env)
        assert str(e.value) == 'exec: "tool": executable file not found in $PATH'


def test_absolute_path(bins):
    assert lookup(f"{bins}/a/tool", []) == f"{bins}/a/tool"
    assert lookup(f"{bins}/a/link", ["PATH=/nonexistent"]) == f"{bins}/a/link"


def test_relative_path_with_slash_is_not_searched(bins, monkeypatch):
    monkeypatch.chdir(bins)
    assert lookup("a/tool", [f"PATH={bins}/b"]) == "a/tool"
    assert lookup("./a/tool", []) == "./a/tool"
    with pytest.raises(ExecNotFound) as e:
        lookup("b/nosuch", [f"PATH={bins}/b"])
    assert str(e.value) == 'exec: "b/nosuch": stat b/nosuch: no such file or directory'


def test_absolute_missing(bins):
    with pytest.raises(ExecNotFound) as e:
        lookup(f"{bins}/a/nosuch", [])
    assert str(e.value) == f'exec: "{bins}/a/nosuch": stat {bins}/a/nosuch: no such file or directory'
    with pytest.raises(ExecNotFound):
        lookup(f"{bins}/a/dangling", [])


def test_absolute_not_executable(bins):
    with pytest.raises(PyruncError) as e:
        lookup(f"{bins}/a/plain", [])
    assert type(e.value) is PyruncError
    assert str(e.value) == f'exec: "{bins}/a/plain": permission denied'


def test_absolute_directory(bins):
    with pytest.raises(PyruncError) as e:
        lookup(f"{bins}/a/isdir", [])
    assert str(e.value) == f'exec: "{bins}/a/isdir": permission denied'


def test_absolute_component_not_a_directory(bins):
    with pytest.raises(PyruncError) as e:
        lookup(f"{bins}/a/plain/x", [])
    assert str(e.value) == f'exec: "{bins}/a/plain/x": stat {bins}/a/plain/x: not a directory'
