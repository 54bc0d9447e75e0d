"""log.py: runc/logrus-compatible text and JSON lines."""
import json
import os
import re
import stat
import time

import pytest

from pyrunc import log
from pyrunc.log import Logger, _quote_text, _rfc3339

TIME = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:Z|[+-]\d\d:\d\d)"


@pytest.mark.parametrize("value,quoted", [
    ("simple", "simple"), ("a-b.c_d/e@f^g+h", "a-b.c_d/e@f^g+h"), ("ABC123", "ABC123"),
    ("", ""),  # logrus leaves an empty value bare
    ("two words", '"two words"'), ("a=b", '"a=b"'), ("a:b", '"a:b"'), ("2024-01-02T03:04:05Z", '"2024-01-02T03:04:05Z"'),
    ('say "hi"', '"say \\"hi\\""'), ("back\\slash", '"back\\\\slash"'), ("line\nbreak", '"line\\nbreak"'),
    ("tab\there", '"tab\\there"'), ("cr\r", '"cr\\r"'), ("nul\x00", '"nul\\x00"'), ("del\x7f", '"del\\x7f"'),
    ("bell\a", '"bell\\a"'), ("café", '"café"'), ("日本", '"日本"'), ("nbsp\u00a0", '"nbsp\\u00a0"'),
    ("é", '"é"'),  # not ASCII alnum: quoted, as logrus
])
def test_quote_text(value, quoted):
    assert _quote_text(value) == quoted


def test_rfc3339_utc(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    try:
        value = _rfc3339()
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", value)
        assert abs(time.mktime(time.strptime(value, "%Y-%m-%dT%H:%M:%SZ")) - time.time()) < 5
    finally:
        monkeypatch.undo()
        time.tzset()


@pytest.mark.parametrize("tz,suffix", [("XYZ-5:30", "+05:30"), ("XYZ+3", "-03:00"), ("XYZ-14", "+14:00"),
                                       ("XYZ+9:45", "-09:45")])
def test_rfc3339_offsets(monkeypatch, tz, suffix):
    monkeypatch.setenv("TZ", tz)  # POSIX TZ: the sign is inverted (XYZ-5:30 is UTC+5:30)
    time.tzset()
    try:
        value = _rfc3339()
        assert value.endswith(suffix) and re.fullmatch(TIME, value)
    finally:
        monkeypatch.undo()
        time.tzset()


def test_text_to_stderr(capsys):
    logger = Logger()
    logger.error("container c1 does not exist")
    logger.warning("careful")
    logger.log("info", "plain")
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 3
    assert re.fullmatch(rf'time="{TIME}" level=error msg="container c1 does not exist"', err[0])
    assert re.fullmatch(rf'time="{TIME}" level=warning msg=careful', err[1])
    assert re.fullmatch(rf'time="{TIME}" level=info msg=plain', err[2])


def test_json_to_stderr(capsys):
    Logger(fmt="json").error('bad "thing"\n')
    err = capsys.readouterr().err
    assert err.endswith("\n") and err.count("\n") == 1
    entry = json.loads(err)
    assert list(entry) == ["level", "msg", "time"]
    assert entry["level"] == "error" and entry["msg"] == 'bad "thing"\n'
    assert re.fullmatch(TIME, entry["time"])
    assert err.startswith('{"level":"error","msg":"bad \\"thing\\"\\n","time":"')


def test_debug_only_when_enabled(capsys):
    Logger().debug("hidden")
    assert capsys.readouterr().err == ""
    Logger(debug=True).debug("shown")
    assert re.fullmatch(rf'time="{TIME}" level=debug msg=shown\n', capsys.readouterr().err)


@pytest.fixture
def configured():
    """log.configure() on the process-wide logger (the only one that writes files), undone after."""
    saved = (log.logger.path, log.logger.fmt, log.logger.debug_enabled, log.logger._fd)
    opened = []

    def configure(path, fmt="text", debug=False):
        logger = log.configure(path, fmt, debug)
        if logger._fd is not None:
            opened.append(logger._fd)
        return logger
    yield configure
    for fd in opened:
        os.close(fd)
    log.logger.path, log.logger.fmt, log.logger.debug_enabled, log.logger._fd = saved


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_configure_opens_the_file_at_once(tmp_path, configured):
    path = tmp_path / "log.json"
    logger = configured(str(path), "json", True)
    assert logger is log.logger
    assert path.read_bytes() == b""  # created before anything is logged, as runc
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644 & ~_umask()


def test_configure_relative_path(tmp_path, monkeypatch, configured):
    monkeypatch.chdir(tmp_path)
    logger = configured("rel.log", "json", True)
    assert logger.path == str(tmp_path / "rel.log")  # absolute: the runtime changes directory later
    assert (logger.fmt, logger.debug_enabled) == ("json", True)
    assert (tmp_path / "rel.log").exists()


def test_configure_without_a_file(configured):
    logger = configured("", "text", False)
    assert logger.path is None


def test_configure_unopenable_file(tmp_path, configured):
    with pytest.raises(FileNotFoundError):
        configured(str(tmp_path / "missing" / "log"))


def test_json_to_file_and_error_on_stderr(tmp_path, capsys, configured):
    path = tmp_path / "log.json"
    logger = configured(str(path), "json", debug=True)
    logger.debug("step one")
    logger.warning("odd")
    logger.error("container c1 does not exist")
    captured = capsys.readouterr()
    # error() also writes the bare message to stderr when the log is a file (as runc does)
    assert captured.err == "container c1 does not exist\n"
    assert captured.out == ""
    lines = path.read_text().splitlines()
    entries = [json.loads(line) for line in lines]
    assert [(e["level"], e["msg"]) for e in entries] == [("debug", "step one"), ("warning", "odd"),
                                                          ("error", "container c1 does not exist")]
    assert all(list(e) == ["level", "msg", "time"] for e in entries)


def test_text_to_file_appends(tmp_path, capsys, configured):
    path = tmp_path / "log.txt"
    path.write_text("existing line\n")
    logger = configured(str(path))
    logger.warning("w")
    logger.debug("not enabled")
    logger.error("e r")
    lines = path.read_text().splitlines()
    assert len(lines) == 3
    assert lines[0] == "existing line"
    assert re.fullmatch(rf'time="{TIME}" level=warning msg=w', lines[1])
    assert re.fullmatch(rf'time="{TIME}" level=error msg="e r"', lines[2])
    assert capsys.readouterr().err == "e r\n"


def test_failed_write_is_reported_on_stderr(capsys, configured):
    logger = configured("/dev/full", "json")
    logger.warning("w")
    assert capsys.readouterr().err == "pyrunc: cannot write log /dev/full: No space left on device\n"
    logger.error("boom")
    assert capsys.readouterr().err == "pyrunc: cannot write log /dev/full: No space left on device\nboom\n"
