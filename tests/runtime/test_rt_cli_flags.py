"""cli/flags.py: runc's (urfave/cli + Go flag) command-line syntax."""
import pytest

from pyrunc.cli.flags import Flag, parse, usage_text
from pyrunc.errors import UsageError

FLAGS = [
    Flag("bundle|b", "str", "", "path to the root of the bundle directory"),
    Flag("console-socket", "str", "", "path to an AF_UNIX socket"),
    Flag("pid-file", "str", "", "specify the file to write the process id to"),
    Flag("detach|d", "bool", help="detach from the container's process"),
    Flag("no-pivot", "bool", help="do not use pivot root"),
    Flag("preserve-fds", "int", 0, "pass N additional file descriptors"),
    Flag("env|e", "list", help="set environment variables"),
    Flag("secret", "str", "x", "hidden", hidden=True),
]


def p(argv, **kw):
    return parse(FLAGS, argv, **kw)


def test_defaults():
    opts, pos = p([])
    assert opts == {"bundle": "", "console_socket": "", "pid_file": "", "detach": False, "no_pivot": False,
                    "preserve_fds": 0, "env": [], "secret": "x"}
    assert pos == []


def test_default_lists_are_not_shared_between_calls():
    opts1, _ = p(["--env", "A=1"])
    opts2, _ = p([])
    assert opts1["env"] == ["A=1"] and opts2["env"] == []
    assert FLAGS[6].default == []


def test_flag_object():
    flag = Flag("console-socket|c", "str", "", "help")
    assert flag.names == ("console-socket", "c") and flag.dest == "console_socket"
    assert Flag("debug").kind == "bool" and Flag("debug").default is False
    assert Flag("x", "list").default == []
    assert Flag("n", "int", 5).default == 5


@pytest.mark.parametrize("argv", [
    ["--bundle", "/b", "id"], ["--bundle=/b", "id"], ["-bundle", "/b", "id"], ["-bundle=/b", "id"],
    ["-b", "/b", "id"], ["-b=/b", "id"], ["--b", "/b", "id"],
])
def test_value_syntaxes(argv):
    opts, pos = p(argv)
    assert opts["bundle"] == "/b" and pos == ["id"]


def test_equals_value_may_hold_equals_and_be_empty():
    assert p(["--env=A=B=C"])[0]["env"] == ["A=B=C"]
    assert p(["--bundle="])[0]["bundle"] == ""
    assert p(["--bundle", ""])[0]["bundle"] == ""


def test_value_that_looks_like_a_flag_is_taken_verbatim():
    opts, pos = p(["--pid-file", "--detach", "id"])
    assert opts["pid_file"] == "--detach" and opts["detach"] is False and pos == ["id"]
    opts, _ = p(["--preserve-fds", "-1"])
    assert opts["preserve_fds"] == -1


def test_last_value_wins():
    assert p(["-b", "one", "--bundle=two"])[0]["bundle"] == "two"


@pytest.mark.parametrize("token,value", [
    ("--detach", True), ("-d", True), ("-detach", True),
    ("--detach=true", True), ("--detach=1", True), ("--detach=t", True), ("--detach=T", True),
    ("--detach=TRUE", True), ("--detach=True", True),
    ("--detach=false", False), ("--detach=0", False), ("--detach=f", False), ("--detach=F", False),
    ("--detach=FALSE", False), ("--detach=False", False), ("-d=false", False),
])
def test_bool_forms(token, value):
    opts, pos = p([token, "id"])
    assert opts["detach"] is value and pos == ["id"]


def test_bool_never_consumes_the_next_argument():
    opts, pos = p(["--detach", "false", "id"])
    assert opts["detach"] is True and pos == ["false", "id"]


@pytest.mark.parametrize("value", ["yes", "no", "", "tRuE", "2", "on"])
def test_bool_invalid_value(value):
    with pytest.raises(UsageError) as e:
        p([f"--detach={value}"])
    assert str(e.value) == f"invalid boolean value {value!r} for flag --detach"
    assert e.value.exit_code == 1


def test_bool_invalid_value_names_the_form_used():
    with pytest.raises(UsageError) as e:
        p(["-d=maybe"])
    assert str(e.value) == "invalid boolean value 'maybe' for flag -d"


def test_list_flag_repeated_in_order():
    opts, pos = p(["-e", "A=1", "--env", "B=2", "--env=C=3", "-env", "A=4", "id"])
    assert opts["env"] == ["A=1", "B=2", "C=3", "A=4"] and pos == ["id"]


@pytest.mark.parametrize("text,value", [("3", 3), ("0", 0), ("-2", -2), ("0x10", 16), ("0o17", 15),
                                        ("0b101", 5), ("+7", 7)])
def test_int_flag(text, value):
    assert p(["--preserve-fds", text])[0]["preserve_fds"] == value
    assert p([f"--preserve-fds={text}"])[0]["preserve_fds"] == value


@pytest.mark.parametrize("text", ["abc", "", "1.5", "3x", "0x"])
def test_int_flag_invalid(text):
    with pytest.raises(UsageError) as e:
        p([f"--preserve-fds={text}"])
    assert str(e.value) == f"invalid value {text!r} for flag --preserve-fds: not an integer"


def test_int_flag_invalid_separate_value():
    with pytest.raises(UsageError) as e:
        p(["-preserve-fds", "many"])
    assert str(e.value) == "invalid value 'many' for flag -preserve-fds: not an integer"


@pytest.mark.parametrize("token", ["--bundle", "-b", "--preserve-fds", "--env", "-pid-file"])
def test_missing_value(token):
    with pytest.raises(UsageError) as e:
        p(["id", token])
    assert str(e.value) == f"flag needs an argument: {token}"


def test_unknown_flag():
    with pytest.raises(UsageError) as e:
        p(["--nope", "id"])
    assert str(e.value) == "flag provided but not defined: --nope"
    with pytest.raises(UsageError) as e:
        p(["-x=1", "id"], command="create")
    assert str(e.value) == "flag provided but not defined for create: -x"
    with pytest.raises(UsageError) as e:
        p(["id", "--nope=1"], command="state")
    assert str(e.value) == "flag provided but not defined for state: --nope"


def test_double_dash_ends_flags():
    opts, pos = p(["-d", "--", "--bundle", "x", "-e", "--"])
    assert opts["detach"] is True and opts["bundle"] == "" and opts["env"] == []
    assert pos == ["--bundle", "x", "-e", "--"]
    assert p(["--"]) == (p([])[0], [])


def test_single_dash_is_positional():
    opts, pos = p(["-", "id"])
    assert pos == ["-", "id"]


def test_interspersed_flags_after_positionals():
    opts, pos = p(["id", "--detach", "extra", "-b", "/b"])
    assert opts["detach"] is True and opts["bundle"] == "/b" and pos == ["id", "extra"]


def test_interspersed_unknown_flag_after_positional_is_an_error():
    with pytest.raises(UsageError):
        p(["id", "-9"])


def test_stop_at_positional_keeps_everything_verbatim():
    # kill/exec style: flags before the id are parsed, everything from the id on is the container's.
    opts, pos = p(["-d", "id", "--detach", "-b", "/b", "--", "--nope", "-9"], stop_at_positional=True)
    assert opts["detach"] is True and opts["bundle"] == ""
    assert pos == ["id", "--detach", "-b", "/b", "--", "--nope", "-9"]


def test_stop_at_positional_kill_forms():
    assert p(["id", "KILL"], stop_at_positional=True)[1] == ["id", "KILL"]
    assert p(["id", "-9"], stop_at_positional=True)[1] == ["id", "-9"]
    assert p(["--", "id", "-9"], stop_at_positional=True)[1] == ["id", "-9"]
    opts, pos = p(["-b", "/b", "id", "sh", "-c", "echo -b"], stop_at_positional=True)
    assert opts["bundle"] == "/b" and pos == ["id", "sh", "-c", "echo -b"]


def test_stop_at_positional_still_rejects_unknown_flags_before_the_id():
    with pytest.raises(UsageError) as e:
        p(["--nope", "id"], stop_at_positional=True, command="kill")
    assert str(e.value) == "flag provided but not defined for kill: --nope"


def test_usage_text():
    text = usage_text("pyrunc", "create", FLAGS, "<container-id>", "create a container")
    lines = text.splitlines()
    assert lines[:5] == ["NAME:", "   pyrunc create - create a container", "", "USAGE:",
                         "   pyrunc create <container-id>"]
    assert "OPTIONS:" in lines
    assert f"   {'--bundle, -b value':<32} path to the root of the bundle directory" in lines
    assert f"   {'--detach, -d':<32} detach from the container's process" in lines
    assert f"   {'--preserve-fds value':<32} pass N additional file descriptors" in lines
    assert not any("--secret" in line for line in lines)  # hidden
    assert text.endswith("\n")


def test_usage_text_shows_non_empty_defaults():
    flags = [Flag("signal|s", "str", "SIGTERM", "the signal"), Flag("n", "int", 3, "count")]
    lines = usage_text("pyrunc", "kill", flags, "", "kill").splitlines()
    assert f"   {'--signal, -s value':<32} the signal (default: SIGTERM)" in lines
    assert f"   {'-n value':<32} count (default: 3)" in lines
