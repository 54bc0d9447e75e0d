"""Unit tests of pyctr build's Dockerfile parser and shell-word expansion (moby's parser and
shell.Lex rules), with hypothesis for the classes of input: any text either parses or is a
DockerfileError naming a line; continuations split anywhere join back; plain words split as
str.split does; variables expand by Docker's modifiers."""
import pytest
from hypothesis import given, settings, strategies as st

from pyctr.build import words
from pyctr.build.parser import DockerfileError, parse

SAFE = st.text(alphabet="abcdefgxyz0123456789_-./:=@,+", min_size=1, max_size=12)


def test_directives_comments_continuations_heredocs():
    df = parse("# syntax=docker/dockerfile:1\n# escape=`\nFROM busybox AS b\n# comment\n"
               "RUN echo a `\n  # inside\n\n  b\nCOPY --from=b --chown=1:2 a b/\n"
               "RUN <<EOF\necho hi\nEOF\nCMD [\"sh\"]\nonbuild run x\n")
    assert df.directives == {"syntax": "docker/dockerfile:1", "escape": "`"}
    assert df.escape == "`"
    got = [(i.cmd, i.args, i.line) for i in df.instructions]
    assert got == [("FROM", "busybox AS b", 3), ("RUN", "echo a   b", 5), ("COPY", "a b/", 9),
                   ("RUN", "<<EOF", 10), ("CMD", '["sh"]', 13), ("ONBUILD", "run x", 14)]
    assert df.instructions[2].flags == {"from": "b", "chown": "1:2"}
    assert df.instructions[3].heredocs == [("EOF", "echo hi\n", True)]
    assert df.instructions[4].json == ["sh"]
    assert df.instructions[5].trigger.cmd == "RUN"


def test_directive_after_a_comment_is_a_comment():
    df = parse("# hello\n# escape=`\nFROM a\nRUN x \\\n y\n")
    assert df.escape == "\\" and df.instructions[1].args == "x  y"


@pytest.mark.parametrize("text, line, why", [
    ("FROM a\nBOGUS x\n", 2, "unknown instruction: BOGUS"),
    ("FROM a\n\nSHELL /bin/sh\n", 3, "SHELL requires the arguments to be in JSON form"),
    ("FROM a\nRUN <<EOF\nno end\n", 2, "unterminated heredoc EOF"),
    ("# escape=x\nFROM a\n", 1, "invalid escape token"),
    ("FROM a\nENV\n", 2, "ENV requires at least one argument"),
    ("FROM a\nONBUILD ONBUILD RUN x\n", 2, "isn't allowed as an ONBUILD trigger"),
    ("FROM a\nCOPY -x a b\n", 2, None),
])
def test_errors_name_the_line(text, line, why):
    if why is None:
        assert parse(text).instructions[1].args == "-x a b"
        return
    with pytest.raises(DockerfileError) as e:
        parse(text)
    assert e.value.line == line and why in str(e.value)
    assert str(e.value).startswith(f"Dockerfile parse error line {line}:")


@given(st.text(max_size=200))
@settings(max_examples=300, deadline=None)
def test_any_text_parses_or_names_a_line(text):
    try:
        df = parse(text)
    except DockerfileError as e:
        assert e.line >= 1
        return
    for ins in df.instructions:
        assert ins.cmd.isupper() and ins.line >= 1


@given(st.lists(st.lists(SAFE.filter(lambda w: not w.startswith("-")), min_size=1, max_size=6),
                min_size=1, max_size=6), st.randoms())
@settings(max_examples=200, deadline=None)
def test_continuations_join_back(commands, rnd):
    lines, expected = ["FROM base"], []
    for ws in commands:
        text = "RUN " + " ".join(ws)
        cut = sorted(rnd.sample(range(4, len(text)), k=min(2, len(text) - 4)))
        pieces, last = [], 0
        for c in cut:
            pieces.append(text[last:c])
            last = c
        pieces.append(text[last:])
        lines.append("\\\n".join(pieces))
        expected.append(" ".join(ws))
    got = [i.args for i in parse("\n".join(lines) + "\n").instructions[1:]]
    assert got == [e.strip() for e in expected]


@given(st.lists(SAFE.filter(lambda w: "$" not in w), max_size=8))
def test_plain_words_split_as_str_split(ws):
    text = "  ".join(ws)
    assert words.words(text, {}) == text.split()


@given(st.dictionaries(st.from_regex(r"[A-Z_][A-Z0-9_]{0,5}", fullmatch=True), SAFE, max_size=4),
       st.from_regex(r"[A-Z_][A-Z0-9_]{0,5}", fullmatch=True), SAFE)
def test_variable_modifiers(env, name, default):
    value = env.get(name)
    assert words.word(f"${{{name}}}", env) == (value or "")
    assert words.word(f"${name}", env) == (value or "")
    assert words.word(f"${{{name}:-{default}}}", env) == (value or default)
    assert words.word(f"${{{name}:+{default}}}", env) == (default if value else "")
    assert words.word(f"'${name}'", env) == f"${name}"
    assert words.word(f"\\${name}", env) == f"${name}"
    assert words.word(f'"${name} x"', env) == f"{value or ''} x"


def test_key_values_and_errors():
    env = {"A": "x y"}
    assert words.key_values('k=v a="1 2" b=$A c=x\\ y', env, "\\", "ENV") == [
        ("k", "v"), ("a", "1 2"), ("b", "x y"), ("c", "x y")]
    with pytest.raises(words.ExpansionError):
        words.key_values("novalue", env, "\\", "LABEL")
    with pytest.raises(words.ExpansionError):
        words.word('"open', env)
    with pytest.raises(words.ExpansionError):
        words.word("${A:?must be set}", {})
    with pytest.raises(words.ExpansionError):
        words.word("${A%%x}", env)
