"""lifecycle/kill.py parse_signal: runc's signal argument forms."""
import pytest

from pyrunc.errors import UsageError
from pyrunc.lifecycle.kill import parse_signal


@pytest.mark.parametrize("text,number", [
    ("9", 9), ("15", 15), ("1", 1), ("64", 64), ("09", 9), ("0", 0),
    ("KILL", 9), ("SIGKILL", 9), ("kill", 9), ("sigkill", 9), ("SigKill", 9), ("sIgTeRm", 15),
    ("TERM", 15), ("HUP", 1), ("INT", 2), ("QUIT", 3), ("USR1", 10), ("USR2", 12), ("CHLD", 17),
    ("CONT", 18), ("STOP", 19), ("TSTP", 20), ("WINCH", 28), ("PWR", 30), ("SYS", 31), ("STKFLT", 16),
    ("IOT", 6), ("CLD", 17), ("POLL", 29), ("IO", 29), ("RTMIN", 34), ("SIGRTMAX", 64),
])
def test_valid(text, number):
    assert parse_signal(text) == number
    assert type(parse_signal(text)) is int


@pytest.mark.parametrize("text", [
    # not here: "65", "-9", "+9" (runc takes any Go integer; see the report)
    " 9", "9 ", "", "SIG", "sig", "NOPE", "SIGNOPE", "KILL9", "9KILL",
    "SIG_DFL", "SIG_IGN", "DFL", "_DFL", "SIG_BLOCK", "NSIG", "ITIMER_REAL", "²", "٣", "٩",
])
def test_invalid(text):
    with pytest.raises(UsageError) as e:
        parse_signal(text)
    assert str(e.value) == f"unknown signal {text!r}"
    assert e.value.exit_code == 1
