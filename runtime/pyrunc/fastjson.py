"""JSON through the C accelerator alone.

The json package imports re (and re imports enum): about 5 ms at every start of a runtime that
containerd runs several times per container. _json's scanner and encoder are what json uses
underneath; this module drives them directly and adds the indented form runc prints.
"""
import _json

from pyrunc.errors import PyruncError


class JSONError(PyruncError, ValueError):
    """Malformed JSON; the message names line and column."""


_CONSTANTS = {"-Infinity": float("-inf"), "Infinity": float("inf"), "NaN": float("nan")}


class _ScannerContext:
    # The attributes _json.make_scanner reads: json.JSONDecoder's defaults.
    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = _CONSTANTS.__getitem__


def _default(value):
    raise TypeError(f"Object of type {value.__class__.__name__} is not JSON serializable")


_scan = _json.make_scanner(_ScannerContext())
_encode_compact = _json.make_encoder(None, _default, _json.encode_basestring_ascii, None, ":", ",", False, False,
                                     True)
_WHITESPACE = " \t\n\r"


def _where(text, pos):
    line = text.count("\n", 0, pos) + 1
    column = pos - text.rfind("\n", 0, pos)
    return f"line {line} column {column} (char {pos})"


def loads(data):
    text = data.decode() if isinstance(data, (bytes, bytearray)) else data
    pos, end = 0, len(text)
    while pos < end and text[pos] in _WHITESPACE:
        pos += 1
    try:
        value, pos = _scan(text, pos)
    except (StopIteration, ValueError, SystemError):
        # The C scanner words most errors by importing json.decoder mid-scan, which it cannot do
        # cleanly from a fresh interpreter (SystemError). Errors are rare: let json word them.
        _raise_with_position(text)
    while pos < end and text[pos] in _WHITESPACE:
        pos += 1
    if pos != end:
        raise JSONError(f"Extra data: {_where(text, pos)}")
    return value


def _raise_with_position(text):
    import json
    try:
        json.loads(text)
    except json.JSONDecodeError as e:
        raise JSONError(f"{e.msg}: {_where(text, e.pos)}") from None
    except ValueError:
        # int() refuses more than sys.get_int_max_str_digits() digits (a guard against quadratic
        # conversion); no config field takes such a number.
        raise JSONError(f"a number has more than {_max_digits()} digits") from None
    raise JSONError("malformed JSON")


def _max_digits():
    import sys
    return sys.get_int_max_str_digits()


def dumps(value, indent=None):
    if indent is None:
        return "".join(_encode_compact(value, 0))
    return _pretty(value, " " * indent if isinstance(indent, int) else indent, "")


def _pretty(value, step, pad):
    if isinstance(value, dict) and value:
        inner = pad + step
        items = [f"{inner}{_json.encode_basestring_ascii(_key(k))}: {_pretty(v, step, inner)}"
                 for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(value, (list, tuple)) and value:
        inner = pad + step
        return "[\n" + ",\n".join(inner + _pretty(v, step, inner) for v in value) + "\n" + pad + "]"
    return "".join(_encode_compact(value, 0))


def _key(key):
    """A dict key as json.dumps writes it (True -> "true", 1.5 -> "1.5")."""
    if isinstance(key, str):
        return key
    if isinstance(key, (float, bool)) or key is None:
        return "".join(_encode_compact(key, 0))
    if isinstance(key, int):
        return int.__repr__(key)
    raise TypeError(f"keys must be str, int, float, bool or None, not {key.__class__.__name__}")
