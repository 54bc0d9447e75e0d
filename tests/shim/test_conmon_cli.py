"""conmon's flag syntax and Docker's detach keys, as pyrunc-shim parses them."""
import os
import sys

import pytest

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(_REPO, "shim"))

from pyrunc_shim import attachproto, conmon_cli  # noqa: E402


def test_conmon_flag_forms():
    o = conmon_cli.parse(["--api-version", "1", "-c", "id", "-ux", "-rrunc", "--bundle=/b", "--runtime-arg",
                          "--root", "--runtime-arg", "/r", "-l", "json-file:/l1", "--log-path", "/l2", "--sync",
                          "-t", "--log-size-max", "1024", "--exit-command-arg", "a", "--exit-command-arg", "b"])
    assert (o.cid, o.cuuid, o.runtime, o.bundle) == ("id", "x", "runc", "/b")
    assert o.runtime_args == ["--root", "/r"] and o.exit_command_args == ["a", "b"]
    assert o.logs() == [("json-file", "/l1"), ("k8s-file", "/l2")]
    assert o.sync and o.terminal and not o.stdin and o.log_size_max == 1024 and o.api_version == 1


@pytest.mark.parametrize("argv,msg", [
    (["-c", "x", "-r", "runc"], "--bundle is required"),
    (["-c", "x", "-r", "runc", "-b", "/b", "--log-size-max", "big"], "not an integer"),
    (["-c", "x", "-r", "runc", "-b", "/b", "--bogus"], "unknown flag --bogus"),
    (["-c", "x", "-r", "runc", "-b", "/b", "-l", "syslog:/x"], "unknown driver 'syslog'"),
    (["-c", "x", "-r", "runc", "-b", "/b", "-e"], "--exec needs --exec-process-spec"),
])
def test_conmon_flag_errors(argv, msg):
    with pytest.raises(conmon_cli.UsageError, match=msg):
        conmon_cli.parse(argv)


def test_detach_keys():
    assert attachproto.parse_detach_keys("ctrl-p,ctrl-q") == b"\x10\x11"
    assert attachproto.parse_detach_keys("ctrl-@,a,ctrl-]") == b"\x00a\x1d"
    with pytest.raises(ValueError, match="ctrl-1"):
        attachproto.parse_detach_keys("ctrl-1")
    m = attachproto.DetachMatcher(b"\x10\x11")
    assert m.feed(b"ab\x10") == (b"ab", False)
    assert m.feed(b"c") == (b"\x10c", False)      # not the sequence after all: both bytes go through
    assert m.feed(b"x\x10\x10\x11rest") == (b"x\x10", True)
    assert attachproto.DetachMatcher(b"").feed(b"\x10\x11") == (b"\x10\x11", False)


def test_packets():
    pk = attachproto.packets(attachproto.STDERR, b"x" * 10000)
    assert [p[0] for p in pk] == [3, 3] and len(pk[0]) == attachproto.PACKET and b"".join(p[1:] for p in pk) == b"x" * 10000


def test_version_is_what_podman_parses():
    """podman (containers/common probeConmon) trusts a conmon whose --version starts with
    `conmon version X.Y.Z` at 2.0.1 or later; anything else and it silently uses /usr/bin/conmon."""
    import re
    first, second = conmon_cli.version_text().splitlines()
    m = re.match(r"^conmon version (\d+).(\d+).(\d+)", first)
    assert m and tuple(map(int, m.groups())) >= (2, 0, 1), first
    assert "pyrunc-shim" in second
    assert conmon_cli.parse(["--version"]).version
