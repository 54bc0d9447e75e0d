"""Digests and references against their grammars (image-spec descriptor.md, distribution/reference),
property-based: whatever a peer or a user sends, what passes is exactly what the grammar allows,
and nothing that passes can put a control character, a space or non-ASCII text into a request
line, a header or a path."""
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyctr.errors import InvalidReference, PyctrError
from pyctr.image import digest as _digest
from pyctr.image import httpconn
from pyctr.image.reference import parse
from pyctr.image.registry import _manifest_ref

STRICT_DIGEST = re.compile(r"sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128}")
HEX = "0123456789abcdef"
# distribution/reference's grammar, in the ASCII its Go regexps mean
REFERENCE = re.compile(
    r"(?:(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*"
    r"[a-zA-Z0-9]))*(?::[0-9]+)?/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)"
    r"[a-z0-9]+)*)*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[0-9a-f]{64})?", re.ASCII)
SAFE = re.compile(r"[A-Za-z0-9._:/@\[\]-]+", re.ASCII)

_alnum = st.text("abz019", min_size=1, max_size=4)
_upper_alnum = st.text("aBZz09-", min_size=1, max_size=5).filter(lambda t: t[0] != "-" and t[-1] != "-")


def _joined(parts, separators):
    return st.tuples(parts, st.lists(st.tuples(separators, parts), max_size=3)).map(
        lambda x: x[0] + "".join(sep + p for sep, p in x[1]))


_component = _joined(_alnum, st.sampled_from([".", "_", "__", "-", "---"]))
_domain = st.tuples(_joined(_upper_alnum, st.just(".")),
                    st.one_of(st.just(""), st.integers(0, 99999).map(lambda p: f":{p}")))
_tag = st.tuples(st.sampled_from("aZ9_"), st.text("aZ09_.-", max_size=130)).map("".join)


@st.composite
def grammar_references(draw):
    """A reference as distribution/reference's grammar builds one, part by part."""
    text = ""
    if draw(st.booleans()):
        text = "".join(draw(_domain)) + "/"
    text += "/".join(draw(st.lists(_component, min_size=1, max_size=3)))
    if draw(st.booleans()):
        text += ":" + draw(_tag)
    if draw(st.booleans()):
        text += "@sha256:" + draw(st.text(HEX, min_size=64, max_size=64))
    return text


valid_digests = st.one_of(
    st.text(HEX, min_size=64, max_size=64).map(lambda h: "sha256:" + h),
    st.text(HEX, min_size=128, max_size=128).map(lambda h: "sha512:" + h))


@st.composite
def mutated_digests(draw):
    """A valid digest with one character inserted, replaced or removed: the near misses."""
    d = list(draw(valid_digests))
    i = draw(st.integers(0, len(d)))
    how = draw(st.sampled_from(["insert", "replace", "delete"]))
    c = draw(st.one_of(st.characters(), st.sampled_from(list("\r\n\0 :/.%AFG"))))
    if how == "insert":
        d.insert(i, c)
    elif i < len(d):
        if how == "replace":
            d[i] = c
        else:
            del d[i]
    return "".join(d)


@given(valid_digests)
def test_every_valid_digest_passes(d):
    assert _digest.check(d) == d


@settings(max_examples=400)
@given(st.one_of(mutated_digests(), st.text(), st.from_regex(r"[a-z0-9]+:[a-zA-Z0-9=_-]+", fullmatch=True)))
def test_a_digest_passes_only_if_the_strict_grammar_allows_it(d):
    try:
        _digest.check(d)
    except PyctrError as e:
        assert "\n" not in str(e) and "\r" not in str(e)  # the message shows it escaped
        assert not STRICT_DIGEST.fullmatch(d)
    else:
        assert STRICT_DIGEST.fullmatch(d)


def test_non_strings_are_refused():
    for d in (None, 5, ["sha256:" + "a" * 64], {"a": 1}):
        with pytest.raises(PyctrError, match="malformed digest"):
            _digest.check(d, "layer")


@settings(max_examples=300)
@given(grammar_references())
def test_references_of_the_grammar_parse_and_round_trip(text):
    assert REFERENCE.fullmatch(text)
    try:
        ref = parse(text)
    except InvalidReference as e:
        # what the grammar allows but Docker refuses too (an uppercase repository, an over-long
        # name), or refuses where Docker would take an invalid host for a path ('a_b.c/d')
        assert any(why in str(e) for why in ("lowercase", "longer than", "invalid registry host")), (text, e)
        return
    assert parse(str(ref)) == ref
    assert SAFE.fullmatch(str(ref)), ref


@settings(max_examples=400)
@given(st.one_of(st.text(), grammar_references().flatmap(
    lambda t: st.tuples(st.just(t), st.integers(0, len(t)), st.characters()).map(
        lambda x: x[0][:x[1]] + x[2] + x[0][x[1]:]))))
def test_whatever_parses_is_clean_ascii(text):
    try:
        ref = parse(text)
    except InvalidReference:
        return
    for part in (ref.domain, ref.path, ref.tag or "x", ref.digest or "x"):
        assert SAFE.fullmatch(part), (text, part)
    assert REFERENCE.fullmatch(text) or text.startswith(("docker.io/", "index.docker.io/")), text


@pytest.mark.parametrize("text", ["busybox:\u00e9t\u00e9", "busybox:\u0661", "b\u0131sybox",
                                  "busybox@sha256:" + "A" * 64, "busybox:1\r\nX: y"])
def test_unicode_and_uppercase_refused(text):
    with pytest.raises(InvalidReference):
        parse(text)


@given(st.text())
def test_manifest_refs_in_urls_are_tags_or_digests(text):
    try:
        out = _manifest_ref(text)
    except PyctrError:
        return
    assert SAFE.fullmatch(out) and (STRICT_DIGEST.fullmatch(out) or ":" not in out)


@given(st.tuples(st.text(), st.sampled_from("\r\n\0"), st.text()).map("".join),
       st.sampled_from(["path", "header"]))
def test_no_request_goes_out_with_a_control_character(bad, where):
    conn = httpconn.Connection("http", "127.0.0.1:9")  # the discard port: nothing may be sent to it
    conn.sock = _NoSend()
    with pytest.raises(httpconn.ProtocolError, match="control character"):
        if where == "path":
            conn.request("GET", "/v2/" + bad)
        else:
            conn.request("GET", "/v2/", {"Authorization": bad})


class _NoSend:
    def sendall(self, data):
        raise AssertionError(f"sent {data!r}")

    def close(self):
        pass
