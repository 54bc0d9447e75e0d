"""The functions a Docker `--format` template can call: Go's builtins and Docker's own
(`cli/templates/templates.go`), on decoded JSON values."""
import json

from pyctr.container import gofmt

MISSING = object()  # a map key that is not there: Go's invalid reflect.Value


class FuncError(Exception):
    """A function refused its arguments; the executor reports `error calling NAME: <why>`."""


def truth(value):
    """Go's template truth: false, 0, nil, empty string/list/map and missing values are false."""
    if value is MISSING or gofmt.is_nil(value):
        return False
    if isinstance(value, (bool, int, float)):
        return bool(value)
    if isinstance(value, (str, list, tuple, dict)):
        return len(value) > 0
    return True


def _clean(value):
    return None if value is MISSING else value


def _plain(value):
    """None for anything nil (missing, JSON null, a typed GoNil)."""
    return None if value is MISSING or gofmt.is_nil(value) else value


def _fn_json(value):
    """Docker's json: encoding/json without HTML escaping, the trailing newline trimmed."""
    return _go_json(_clean(value))


def _go_json(value):
    # by hand rather than json.dumps: Go prints 3.0 as 3 and 1e-07 as 1e-07 but 1e+21 as 1e+21
    if gofmt.is_nil(value):
        return "null"
    if isinstance(value, dict):
        return "{" + ",".join(_go_json(str(k)) + ":" + _go_json(v) for k, v in value.items()
                              if not callable(v)) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_go_json(v) for v in value) + "]"
    if isinstance(value, str):
        text = json.dumps(value.encode("utf-8", "surrogateescape").decode("utf-8", "replace"),
                          ensure_ascii=False)
        return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    if isinstance(value, float) and not isinstance(value, bool):
        if value != value or value in (float("inf"), float("-inf")):
            raise FuncError(f"json: unsupported value: {gofmt.format_float(value)}")
        if value == int(value) and abs(value) < 1e21:
            return str(int(value))
        if abs(value) < 1e-6 or abs(value) >= 1e21:
            mantissa, _, exp = repr(value).partition("e")
            return f"{mantissa}e{int(exp):+d}" if exp else repr(value)
        return repr(value) if "e" not in repr(value) else f"{value:f}".rstrip("0")
    return json.dumps(value)


def _need_str(value, what="string"):
    if not isinstance(value, str):
        raise FuncError(f"wrong type for value; expected {what}; got {gofmt.go_type(_clean(value))}")
    return value


def _need_int(value):
    if not isinstance(value, int) or isinstance(value, bool):
        raise FuncError(f"wrong type for value; expected int; got {gofmt.go_type(_clean(value))}")
    return value


def _fn_split(s, sep):
    _need_str(s), _need_str(sep)
    if sep == "":
        return list(s)
    return s.split(sep)


def _fn_join(items, sep):
    _need_str(sep)
    if not isinstance(items, (list, tuple)) or not all(isinstance(x, str) for x in items):
        raise FuncError(f"wrong type for value; expected []string; got {gofmt.go_type(_clean(items))}")
    return sep.join(items)


def _fn_title(s):
    # strings.Title: upper-case the first letter of each word; letters, digits, '_' and
    # apostrophes continue a word
    out = []
    prev_sep = True
    for ch in _need_str(s):
        out.append(ch.upper() if prev_sep else ch)
        prev_sep = not (ch.isalnum() or ch == "_" or ch == "'")
    return "".join(out)


def _fn_pad(s, prefix, suffix):
    return " " * _need_int(prefix) + _need_str(s) + " " * _need_int(suffix)


def _fn_truncate(s, length):
    _need_str(s), _need_int(length)
    return s[:length] if len(s) > length else s


def _fn_len(value):
    value = _plain(value)
    if value is None:
        return 0  # Docker's nil slices and maps
    if isinstance(value, str):
        return len(value.encode())
    if isinstance(value, (list, tuple, dict)):
        return len(value)
    raise FuncError(f"len of type {gofmt.go_type(value)}")


def _fn_index(item, *keys):
    item = _clean(item)
    for key in keys:
        if gofmt.is_nil(item):
            # a nil map in Docker's typed structs: its zero value (Labels are map[string]string)
            if isinstance(key, str):
                return ""
            raise FuncError(f"index out of range: {key}")
        if isinstance(item, dict):
            if not isinstance(key, str):
                raise FuncError(f"value has type {gofmt.go_type(key)}; should be string")
            if key in item:
                item = item[key]
                continue
            # Go's index yields the element type's zero value: "" for a map[string]string
            # (Labels, Options), nothing printable for anything else
            return "" if all(isinstance(v, str) for v in item.values()) else MISSING
        if isinstance(item, (list, tuple, str)):
            if not isinstance(key, int) or isinstance(key, bool):
                raise FuncError(f"cannot index slice/array with type {gofmt.go_type(_clean(key))}")
            seq = item.encode() if isinstance(item, str) else item
            if key < 0 or key >= len(seq):
                raise FuncError(f"index out of range: {key}")
            item = seq[key]
            continue
        raise FuncError(f"can't index item of type {gofmt.go_type(item)}")
    return item


def _fn_slice(item, *bounds):
    item = _plain(item)
    if not isinstance(item, (list, tuple, str)):
        raise FuncError(f"can't slice item of type {gofmt.go_type(item)}")
    if len(bounds) > 2:
        raise FuncError("too many slice indexes")
    for b in bounds:
        _need_int(b)
    size = len(item.encode()) if isinstance(item, str) else len(item)
    start = bounds[0] if bounds else 0
    end = bounds[1] if len(bounds) > 1 else size
    if not 0 <= start <= end <= size:
        raise FuncError(f"index out of range: {end if end > size else start}")
    if isinstance(item, str):
        return item.encode()[start:end].decode(errors="replace")
    return list(item[start:end])


def _comparable(a, b):
    a, b = _plain(a), _plain(b)
    if isinstance(a, bool) != isinstance(b, bool):
        raise FuncError("incompatible types for comparison")
    numbers = (int, float)
    if isinstance(a, numbers) and isinstance(b, numbers):
        return a, b
    if type(a) is not type(b) and not (a is None or b is None):
        raise FuncError("incompatible types for comparison")
    return a, b


def _fn_eq(first, *others):
    if not others:
        raise FuncError("missing argument for comparison")
    for other in others:
        a, b = _comparable(first, other)
        if isinstance(a, (list, dict)) or isinstance(b, (list, dict)):
            raise FuncError("non-comparable type")
        if a == b:
            return True
    return False


def _fn_ne(a, b):
    return not _fn_eq(a, b)


def _ordered(a, b):
    a, b = _comparable(a, b)
    if not (isinstance(a, (int, float, str)) and not isinstance(a, bool)):
        raise FuncError("invalid type for comparison")
    return a, b


def _fn_html(*args):
    import html
    # Go's HTMLEscape: numeric entities for quotes
    return html.escape(gofmt.sprint([_clean(a) for a in args])).replace("&#x27;", "&#39;").replace("&quot;", "&#34;")


def _fn_js(*args):
    out = []
    for ch in gofmt.sprint([_clean(a) for a in args]):
        if ch in "\\'\"<>&=" or ord(ch) < 0x20:
            out.append({"\\": "\\\\", "'": "\\'", '"': '\\"'}.get(ch, f"\\u{ord(ch):04X}"))
        else:
            out.append(ch)
    return "".join(out)


def _fn_urlquery(*args):
    from urllib.parse import quote_plus
    return quote_plus(gofmt.sprint([_clean(a) for a in args]))


def _fn_printf(fmt, *args):
    return gofmt.sprintf(_need_str(fmt), [_clean(a) for a in args])


def _fn_not(value):
    return not truth(value)


FUNCS = {
    "and": None, "or": None,  # short-circuit: handled by the executor
    "not": _fn_not,
    "len": _fn_len,
    "index": _fn_index,
    "slice": _fn_slice,
    "print": lambda *a: gofmt.sprint([_clean(x) for x in a]),
    "println": lambda *a: gofmt.sprintln([_clean(x) for x in a]),
    "printf": _fn_printf,
    "eq": _fn_eq,
    "ne": _fn_ne,
    "lt": lambda a, b: _ordered(a, b)[0] < _ordered(a, b)[1],
    "le": lambda a, b: _ordered(a, b)[0] <= _ordered(a, b)[1],
    "gt": lambda a, b: _ordered(a, b)[0] > _ordered(a, b)[1],
    "ge": lambda a, b: _ordered(a, b)[0] >= _ordered(a, b)[1],
    "html": _fn_html,
    "js": _fn_js,
    "urlquery": _fn_urlquery,
    # Docker's (cli/templates/templates.go basicFunctions)
    "json": _fn_json,
    "split": _fn_split,
    "join": _fn_join,
    "title": _fn_title,
    "lower": lambda s: _need_str(s).lower(),
    "upper": lambda s: _need_str(s).upper(),
    "pad": _fn_pad,
    "truncate": _fn_truncate,
}

# Docker renders a table's header by running the row template on the header names with these
# replacing the string functions, so `table {{upper .Name}}` still prints the header as given
HEADER_FUNCS = dict(FUNCS, **{
    "json": lambda v: v, "split": lambda v, _sep: v, "join": lambda v, _sep: v,
    "title": lambda v: v, "lower": lambda v: v, "upper": lambda v: v, "truncate": lambda v, _n: v,
})
