"""update's flag parsing and merging, events' --interval: pure parts of the two verbs."""
import pytest

from pyrunc.cli.events import parse_duration
from pyrunc.errors import UsageError
from pyrunc.lifecycle.update import merge, ram_in_bytes, resources_from_flags


@pytest.mark.parametrize("text,value", [("512", 512), ("20m", 20 << 20), ("20M", 20 << 20), ("1g", 1 << 30),
                                        ("1.5GiB", 3 << 29), ("10 KB", 10 << 10), ("-1", -1), ("0", 0)])
def test_ram_in_bytes(text, value):
    assert ram_in_bytes(text, "memory") == value


@pytest.mark.parametrize("text", ["lots", "", "-5", "1x"])
def test_ram_in_bytes_refuses(text):
    with pytest.raises(UsageError, match="--memory"):
        ram_in_bytes(text, "memory")


def test_resources_from_flags_sets_only_given_flags():
    res = resources_from_flags({"memory": "1m", "pids-limit": "0", "cpu-quota": None, "cpuset-cpus": "0-1"})
    assert res == {"memory": {"limit": 1 << 20}, "pids": {"limit": 0}, "cpu": {"cpus": "0-1"}}
    assert resources_from_flags({"memory": "-1"}) == {"memory": {"limit": -1, "swap": -1}}
    with pytest.raises(UsageError, match="--pids-limit"):
        resources_from_flags({"pids-limit": "many"})


def test_merge_keeps_what_the_update_does_not_touch():
    current = {"memory": {"limit": 10, "swap": 20}, "pids": {"limit": 5}, "unified": {"a.b": "1"}}
    merged = merge(current, {"memory": {"limit": 15}, "unified": {"c.d": "2"}})
    assert merged == {"memory": {"limit": 15, "swap": 20}, "pids": {"limit": 5}, "unified": {"c.d": "2"}}
    assert current["memory"] == {"limit": 10, "swap": 20}, "the recorded set is not mutated"


@pytest.mark.parametrize("text,seconds", [("5s", 5), ("500ms", 0.5), ("1m30s", 90), ("2h", 7200),
                                          ("1.5s", 1.5)])
def test_parse_duration(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["0", "5", "s", "-1s", "5x"])
def test_parse_duration_refuses(text):
    with pytest.raises(UsageError):
        parse_duration(text)
