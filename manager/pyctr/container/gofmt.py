"""Go's fmt for the values a template sees (decoded JSON: dict, list, str, int, float, bool, None):
`%v` printing (`map[a:1 b:[x y]]`, `<nil>`, floats as `1e+06`) and Sprintf's verbs, so that
`{{.X}}` and `{{printf ...}}` print what `docker inspect -f` prints."""
import math
import re

NO_VALUE = "<no value>"


class GoNil:
    """A typed Go nil in a dict built for templates: Docker executes `inspect -f` on its typed
    structs first, so a nil slice prints `[]`, a nil map `map[]`, a nil pointer `<nil>`, where a
    plain None (JSON null) prints `<no value>`. JSON output of such a dict: json_default -> null."""
    __slots__ = ("text",)

    def __init__(self, text):
        self.text = text

    def __repr__(self):
        return f"GoNil({self.text!r})"


NIL_SLICE = GoNil("[]")
NIL_MAP = GoNil("map[]")
NIL_POINTER = GoNil("<nil>")


class GoMap(dict):
    """A dict that is a Go map in Docker's types (missing keys print `<no value>`, %v prints
    `map[k:v]`), where the heuristic of is_map() would guess a struct."""


class GoStruct(dict):
    """A dict that is a Go struct in Docker's types (an unknown field is an error, %v prints
    `{v1 v2}`), where the heuristic of is_map() would guess a map. go_type, if set, names the
    type in errors (`can't evaluate field X in type *formatter.ContainerContext`)."""
    go_type = None

    @classmethod
    def of(cls, row, go_type=None):
        out = cls(row)
        out.go_type = go_type
        return out


def is_map(value):
    """Whether a dict stands for a Go map rather than a struct. Docker's maps are mostly
    map[string]string (Labels, Options, GraphDriver.Data, LogConfig.Config) and its structs have
    non-string fields, so: all values strings (or empty) = a map, unless marked."""
    if isinstance(value, GoMap):
        return True
    if isinstance(value, GoStruct):
        return False
    return all(isinstance(v, str) for v in value.values() if not callable(v))


def json_default(value):
    """json.dumps(obj, default=json_default): a GoNil is null."""
    if isinstance(value, GoNil):
        return None
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def is_nil(value):
    return value is None or isinstance(value, GoNil)


def go_type(value):
    """The Go type name Docker's templates report for a decoded-JSON value (errors quote it)."""
    if value is None:
        return "<nil>"
    if isinstance(value, GoNil):
        return {"[]": "[]interface {}", "map[]": "map[string]interface {}"}.get(value.text, "<nil>")
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "[]interface {}"
    if isinstance(value, dict):
        return "map[string]interface {}"
    return type(value).__name__


def format_float(value, verb="g", prec=-1):
    """strconv.FormatFloat for %v/%g (shortest digits; the %e form when the exponent is < -4 or
    >= 6, so 1000000.0 prints `1e+06` as in Go), %f and %e."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if verb in "fF":
        return f"{value:.{6 if prec < 0 else prec}f}"
    if verb in "eE":
        return f"{value:.{6 if prec < 0 else prec}{verb}}"
    if prec >= 0:
        return f"{value:.{max(prec, 1)}g}"
    sign = "-" if math.copysign(1, value) < 0 else ""
    digits, exp = _shortest_digits(abs(value))
    if exp < -4 or exp >= 6:
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{mantissa}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    if exp < 0:
        return sign + "0." + "0" * (-exp - 1) + digits
    if len(digits) <= exp + 1:
        return sign + digits + "0" * (exp + 1 - len(digits))
    return sign + digits[:exp + 1] + "." + digits[exp + 1:]


def _shortest_digits(value):
    """The shortest round-tripping significant digits of a non-negative float (repr's) and the
    decimal exponent of the first one."""
    text = repr(value)
    mantissa, _, exp_text = text.partition("e")
    int_part, _, frac_part = mantissa.partition(".")
    digits = int_part + frac_part
    point = len(int_part) + (int(exp_text) if exp_text else 0)
    stripped = digits.lstrip("0")
    point -= len(digits) - len(stripped)
    digits = stripped.rstrip("0")
    if not digits:
        return "0", 0
    return digits, point - 1


def format_value(value, top=True):
    """fmt.Sprint(value) for decoded JSON; a missing value or JSON null at the top prints
    `<no value>` (text/template on a map[string]interface{}), inside a container `<nil>`."""
    if value is None:
        return NO_VALUE if top else "<nil>"
    if isinstance(value, GoNil):
        return value.text
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return format_float(value)
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)):
        return "[" + " ".join(format_value(v, top=False) for v in value) + "]"
    if isinstance(value, dict):
        if not is_map(value):
            return "{" + " ".join(format_value(v, top=False) for v in value.values() if not callable(v)) + "}"
        return "map[" + " ".join(f"{format_value(k, top=False)}:{format_value(value[k], top=False)}"
                                 for k in sorted(value, key=_map_key_order)) + "]"
    return str(value)


def _map_key_order(key):
    # fmt sorts map keys; mixed key types cannot come from JSON, so string order is enough
    return (not isinstance(key, str), str(key))


def sprint(args):
    """fmt.Sprint: spaces between operands when neither side is a string."""
    out = []
    prev_string = True
    for i, arg in enumerate(args):
        is_string = isinstance(arg, str)
        if i > 0 and not is_string and not prev_string:
            out.append(" ")
        out.append(format_value(arg, top=False) if arg is not None else "<nil>")
        prev_string = is_string
    return "".join(out)


def sprintln(args):
    return " ".join(format_value(a, top=False) for a in args) + "\n"


_VERB = re.compile(r"%([-+# 0]*)(\*|\d+)?(?:\.(\*|\d*))?([a-zA-Z%])")


def sprintf(fmt, args):
    """fmt.Sprintf for the verbs templates use: %v %s %d %q %x %X %o %b %c %f %e %g %t %T %%, with
    flags, width and precision; wrong or missing operands print Go's `%!d(string=x)` forms."""
    out = []
    pos = 0
    argi = 0
    for m in _VERB.finditer(fmt):
        out.append(fmt[pos:m.start()])
        pos = m.end()
        flags, width, prec, verb = m.groups()
        if verb == "%":
            out.append("%")
            continue
        if width == "*":
            width = str(args[argi]) if argi < len(args) and isinstance(args[argi], int) else ""
            argi += 1
        if prec == "*":
            prec = str(args[argi]) if argi < len(args) and isinstance(args[argi], int) else ""
            argi += 1
        if argi >= len(args):
            out.append(f"%!{verb}(MISSING)")
            continue
        arg = args[argi]
        argi += 1
        text = _format_one(verb, arg, flags, None if prec is None else int(prec or 0))
        out.append(_pad(text, flags, int(width) if width else 0, verb, arg))
    out.append(fmt[pos:])
    if argi < len(args):
        extra = ", ".join(f"{go_type(a)}={format_value(a, top=False)}" for a in args[argi:])
        out.append(f"%!(EXTRA {extra})")
    return "".join(out)


def _bad(verb, arg):
    return f"%!{verb}({go_type(arg)}={format_value(arg, top=False)})"


def _format_one(verb, arg, flags, prec):
    is_int = isinstance(arg, int) and not isinstance(arg, bool)
    if verb == "v":
        text = format_value(arg, top=False)
        if "#" in flags and isinstance(arg, str):
            text = _go_quote(arg)
        return text
    if verb == "T":
        return go_type(arg)
    if verb == "t":
        return ("true" if arg else "false") if isinstance(arg, bool) else _bad(verb, arg)
    if verb == "s":
        if isinstance(arg, (str, list, dict)) or arg is None:
            text = format_value(arg, top=False)
            return text[:prec] if prec is not None else text
        return _bad(verb, arg)
    if verb == "q":
        if isinstance(arg, str):
            return _go_quote(arg)
        if is_int:
            return "'" + chr(arg) + "'"
        if isinstance(arg, list):
            return "[" + " ".join(_format_one("q", a, flags, prec) for a in arg) + "]"
        return _bad(verb, arg)
    if verb in "dboxXc":
        if is_int:
            if verb == "c":
                return chr(arg)
            body = format(abs(arg), {"d": "d", "b": "b", "o": "o", "x": "x", "X": "X"}[verb])
            if prec is not None:
                body = body.rjust(prec, "0")
            if "#" in flags and verb in "xX":
                body = ("0x" if verb == "x" else "0X") + body
            sign = "-" if arg < 0 else ("+" if "+" in flags else (" " if " " in flags else ""))
            return sign + body
        if verb in "xX" and isinstance(arg, str):
            text = arg.encode().hex()
            return text.upper() if verb == "X" else text
        if isinstance(arg, list):
            return "[" + " ".join(_format_one(verb, a, flags, prec) for a in arg) + "]"
        return _bad(verb, arg)
    if verb in "feEgG":
        if isinstance(arg, float):
            text = format_float(arg, verb if verb != "G" else "g", -1 if prec is None else prec)
            return ("+" + text if "+" in flags and arg >= 0 else text)
        return _bad(verb, arg)
    return f"%!{verb}({go_type(arg)}={format_value(arg, top=False)})"


def _pad(text, flags, width, verb, arg):
    if len(text) >= width:
        return text
    if "-" in flags:
        return text.ljust(width)
    numeric = isinstance(arg, (int, float)) and not isinstance(arg, bool) and verb in "dboxXfeEgGv"
    if "0" in flags and numeric:
        sign = text[0] if text[:1] in "+- " and text[:1] else ""
        return sign + text[len(sign):].rjust(width - len(sign), "0")
    return text.rjust(width)


def _go_quote(s):
    """strconv.Quote: a double-quoted Go string literal (printable runes kept, the rest escaped)."""
    out = ['"']
    for ch in s:
        code = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch in _SHORT_ESCAPES:
            out.append(_SHORT_ESCAPES[ch])
        elif code < 0x20 or code == 0x7f:
            out.append(f"\\x{code:02x}")
        elif not ch.isprintable():
            out.append(f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


_SHORT_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}
