"""Unit tests of .dockerignore matching (moby/patternmatcher's rules), property-based where an
oracle exists: a literal pattern matches itself and everything below it; a one-segment glob
matches as fnmatch on top-level names; `**/x` matches x at any depth; `!p` after `p` re-includes;
no pattern or path makes the matcher raise anything but ValueError for a bad class."""
import fnmatch

from hypothesis import given, settings, strategies as st

from pyctr.build.ignore import Matcher, parse

SEG = st.text(alphabet="abcxyz019._-", min_size=1, max_size=6).filter(lambda s: s not in (".", ".."))
PATH = st.lists(SEG, min_size=1, max_size=4).map("/".join)


def test_docker_examples():
    m = Matcher(parse("# comment\n*.log\n!keep.log\n**/tmp\nsub/*\n!sub/ok\n/abs\n  spaced  \ntemp?\n"))
    for path, ignored in [("a.log", True), ("keep.log", False), ("x/y/tmp/z", True), ("tmp", True),
                          ("sub/a", True), ("sub/ok", False), ("sub/ok/deep", False), ("abs", True),
                          ("abs/f", True), ("d/a.log", False), ("spaced", True), ("temp1", True),
                          ("temp12", False), ("Dockerfile", False)]:
        assert m.ignored(path) is ignored, path


@given(PATH, st.lists(SEG, max_size=3))
def test_literal_matches_itself_and_below(pattern, below):
    m = Matcher([pattern])
    assert m.ignored(pattern)
    assert m.ignored("/".join([pattern] + below))
    assert not m.ignored(pattern + "x")  # a sibling with a longer name


@given(st.text(alphabet="abc*?.", min_size=1, max_size=6), SEG)
def test_single_segment_glob_is_fnmatch(pattern, name):
    assert Matcher([pattern]).ignored(name) == fnmatch.fnmatchcase(name, pattern)


@given(SEG, st.lists(SEG, max_size=3))
def test_double_star_matches_at_any_depth(name, prefix):
    assert Matcher([f"**/{name}"]).ignored("/".join(prefix + [name]))


@given(PATH, PATH)
def test_exception_after_pattern_reincludes(pattern, path):
    m = Matcher([pattern, "!" + pattern])
    assert not m.ignored(pattern)


@given(st.lists(st.text(max_size=10), max_size=5), st.text(max_size=20))
@settings(max_examples=300)
def test_never_raises_beyond_bad_classes(patterns, path):
    try:
        m = Matcher(parse("\n".join(patterns)))
    except ValueError:
        return
    assert m.ignored(path) in (True, False)
