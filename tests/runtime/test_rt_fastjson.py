"""fastjson: the json module's results through _json alone."""
import json
import math
import os
import subprocess
import sys

import pytest

from pyrunc import fastjson
from pyrunc.errors import PyruncError

RUNTIME = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "runtime")

VALUES = [
    None, True, False, 0, -1, 1.5, -0.0, 1e300, 5e-324, 2 ** 64, -(2 ** 70), 10 ** 100, "", "plain",
    "ünïcödé ✓ 日本", "emoji 🐳 \U0001f600", "quote \" backslash \\ slash /", "ctl \n\r\t\b\f \x00 \x1f \x7f",
    "\u2028\u2029", "lone surrogate \ud800", [], {}, [[]], [{}], {"": {}}, [1, "a", None, True, 2.25],
    {"a": {"b": {"c": [1, {"d": [[], {}]}]}}},
    {"ociVersion": "1.3.0", "process": {"args": ["sh", "-c", "echo hi"], "env": ["PATH=/bin"]},
     "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}], "uidMappings": []}, "annotations": {}},
    {"k\u00e9y": "v", "a b": 1, "\"": 2, "z": 3, "y": 4},  # insertion order kept, not sorted
    list(range(50)),
]


@pytest.mark.parametrize("value", VALUES, ids=range(len(VALUES)))
def test_dumps_matches_json_compact(value):
    assert fastjson.dumps(value) == json.dumps(value, separators=(",", ":"))


@pytest.mark.parametrize("value", VALUES, ids=range(len(VALUES)))
@pytest.mark.parametrize("indent", [0, 1, 2, 4, "\t", "  "])
def test_dumps_indent_matches_json(value, indent):
    assert fastjson.dumps(value, indent=indent) == json.dumps(value, indent=indent)


@pytest.mark.parametrize("value", VALUES, ids=range(len(VALUES)))
def test_round_trip(value):
    assert fastjson.loads(fastjson.dumps(value)) == value
    assert fastjson.loads(json.dumps(value)) == value
    assert json.loads(fastjson.dumps(value)) == value
    assert fastjson.loads(fastjson.dumps(value, indent=2)) == value


def test_tuples_encode_as_lists():
    assert fastjson.dumps((1, (2, 3))) == "[1,[2,3]]"
    assert fastjson.dumps({"a": (1,)}, indent=2) == json.dumps({"a": (1,)}, indent=2)


def test_non_string_keys_like_json():
    value = {1: "int", 2.5: "float", True: "t", False: "f", None: "n"}
    assert fastjson.dumps(value) == json.dumps(value, separators=(",", ":"))
    assert fastjson.dumps(value, indent=2) == json.dumps(value, indent=2)
    assert fastjson.dumps({"a": {None: [1]}}, indent=4) == json.dumps({"a": {None: [1]}}, indent=4)


def test_invalid_key_type():
    with pytest.raises(TypeError) as e:
        fastjson.dumps({(1, 2): 3})
    assert str(e.value) == "keys must be str, int, float, bool or None, not tuple"
    with pytest.raises(TypeError) as e:
        fastjson.dumps({(1, 2): 3}, indent=2)
    assert str(e.value) == "keys must be str, int, float, bool or None, not tuple"


@pytest.mark.parametrize("indent", [None, 2])
def test_unserializable_value(indent):
    with pytest.raises(TypeError) as e:
        fastjson.dumps({"a": [object()]}, indent=indent)
    assert str(e.value) == "Object of type object is not JSON serializable"
    with pytest.raises(TypeError) as e:
        fastjson.dumps({1, 2}, indent=indent)
    assert str(e.value) == "Object of type set is not JSON serializable"


def test_special_floats_like_json():
    for value in (float("inf"), float("-inf"), [float("nan")]):
        assert fastjson.dumps(value) == json.dumps(value, separators=(",", ":"))
        assert fastjson.dumps(value, indent=2) == json.dumps(value, indent=2)
    assert fastjson.loads("[Infinity,-Infinity]") == [math.inf, -math.inf]
    assert math.isnan(fastjson.loads("NaN"))


def test_loads_types():
    assert fastjson.loads("12345678901234567890123") == 12345678901234567890123
    assert type(fastjson.loads("1")) is int and type(fastjson.loads("1.0")) is float
    assert fastjson.loads("1e2") == 100.0 and type(fastjson.loads("1e2")) is float
    assert fastjson.loads('"\\u00e9\\ud83d\\ude00"') == "é😀"
    assert fastjson.loads('"\\"\\\\\\/\\b\\f\\n\\r\\t"') == "\"\\/\b\f\n\r\t"
    assert fastjson.loads('{"a":1,"a":2}') == {"a": 2}  # last duplicate wins, as json
    assert list(fastjson.loads('{"z":1,"a":2}')) == ["z", "a"]


def test_loads_surrounding_whitespace():
    assert fastjson.loads(" \t\r\n{ \"a\" : [ 1 , 2 ] }\n\n ") == {"a": [1, 2]}


@pytest.mark.parametrize("data", [b'{"a": "\xc3\xa9"}', bytearray(b'{"a": "\xc3\xa9"}')])
def test_loads_bytes(data):
    assert fastjson.loads(data) == {"a": "é"}


def test_loads_bytes_not_utf8_is_a_value_error():
    with pytest.raises(ValueError):
        fastjson.loads(b'"\xff"')


BAD = ["", " ", "\n\n", "{", "[1,", '{"a" 1}', '{"a":1,}', "[1,]", "[1 2]", '"abc', '"a\x01"', "tru", "nul",
       "-", "01", "1 2", '{"a":1}x', "\n\n  [1,\n  ]", '"\\x"', "{'a': 1}", '{"a":1}}', "[]]", "  \n  ]",
       '{"a":\n\n  nope}', "[1, 2\n, 3 4]"]


@pytest.mark.parametrize("text", BAD, ids=range(len(BAD)))
def test_errors_match_json(text):
    with pytest.raises(json.JSONDecodeError) as expected:
        json.loads(text)
    with pytest.raises(fastjson.JSONError) as got:
        fastjson.loads(text)
    assert str(got.value) == str(expected.value)
    assert f"line {expected.value.lineno} column {expected.value.colno} (char {expected.value.pos})" \
        in str(got.value)


def test_error_messages_exact():
    cases = {
        "": "Expecting value: line 1 column 1 (char 0)",
        '{"a": 1} x': "Extra data: line 1 column 10 (char 9)",
        '{\n  "a": 1,\n  "b": 2\n  "c": 3\n}': "Expecting ',' delimiter: line 4 column 3 (char 23)",
        '[\n1,\n\n': "Expecting value: line 4 column 1 (char 6)",
        '"abc': "Unterminated string starting at: line 1 column 1 (char 0)",
    }
    for text, message in cases.items():
        with pytest.raises(fastjson.JSONError) as e:
            fastjson.loads(text)
        assert str(e.value) == message
        with pytest.raises(fastjson.JSONError) as e:
            fastjson.loads(text.encode())
        assert str(e.value) == message


def test_error_class():
    with pytest.raises(fastjson.JSONError) as e:
        fastjson.loads("{")
    assert isinstance(e.value, PyruncError) and isinstance(e.value, ValueError)
    assert e.value.__cause__ is None and e.value.__suppress_context__


def _modules_after(code):
    # -S: no site (site may import re on some setups); -I would also drop PYTHONPATH, so set sys.path in code.
    script = ("import sys\nsys.path.insert(0, %r)\n%s\nprint(' '.join(sorted(sys.modules)))" % (RUNTIME, code))
    cp = subprocess.run([sys.executable, "-S", "-c", script], capture_output=True, text=True, timeout=30)
    assert cp.returncode == 0, cp.stderr
    return set(cp.stdout.split())


def test_import_does_not_load_re_json_enum():
    baseline = _modules_after("pass")
    assert not {"re", "json", "enum"} & baseline, "the interpreter itself imports them: test is meaningless"
    after = _modules_after("import pyrunc.fastjson")
    assert "pyrunc.fastjson" in after
    assert not {"re", "json", "json.decoder", "json.encoder", "enum"} & after


def test_successful_use_does_not_load_re_json_enum():
    after = _modules_after("from pyrunc import fastjson\n"
                           "v = fastjson.loads(b'{\"a\": [1, 2.5, \"\\\\u00e9\", null, true]}')\n"
                           "fastjson.dumps(v); fastjson.dumps(v, indent=2)")
    assert not {"re", "json", "enum"} & after


def test_errors_in_a_fresh_interpreter():
    # In-process tests run with json already imported; the C scanner words its errors by importing
    # json.decoder, which a fresh `pyrunc` process has not done. The messages must be the same there.
    code = ("from pyrunc import fastjson\n"
            "for text in %r:\n"
            "    try:\n"
            "        fastjson.loads(text)\n"
            "    except fastjson.JSONError as e:\n"
            "        print(e)\n" % (BAD,))
    script = "import sys\nsys.path.insert(0, %r)\n%s" % (RUNTIME, code)
    cp = subprocess.run([sys.executable, "-S", "-c", script], capture_output=True, text=True, timeout=30)
    assert cp.returncode == 0, cp.stderr
    expected = []
    for text in BAD:
        try:
            json.loads(text)
        except json.JSONDecodeError as e:
            expected.append(str(e))
    assert cp.stdout.splitlines() == expected
