"""How Docker's classic builder words what it records (`created_by` in history, from moby
builder/dockerfile/dispatchers.go): metadata steps are `<shell> #(nop)  <INSTR ...>`, with Go's
%q for CMD/ENTRYPOINT lists, %v for VOLUME/SHELL lists and the HEALTHCHECK struct; durations as
Go's time.Duration prints them."""
import json

_UNITS = (("h", 3600_000_000_000), ("m", 60_000_000_000))


def go_quote(s):
    return json.dumps(s, ensure_ascii=False)


def go_q_list(items):
    return "[" + " ".join(go_quote(s) for s in items) + "]"


def go_v_list(items):
    return "[" + " ".join(items) + "]"


def go_duration(ns):
    """time.Duration.String() for the whole-unit values Dockerfiles give."""
    if ns == 0:
        return "0s"
    out, neg = [], ns < 0
    ns = abs(ns)
    if ns < 1_000_000_000:
        for unit, size in (("ms", 1_000_000), ("µs", 1_000), ("ns", 1)):
            if ns >= size:
                return ("-" if neg else "") + _frac(ns, size) + unit
    for unit, size in _UNITS:
        if ns >= size:
            out.append(f"{ns // size}{unit}")
            ns %= size
        elif out:
            out.append(f"0{unit}")
    out.append(_frac(ns, 1_000_000_000) + "s")
    return ("-" if neg else "") + "".join(out)


def _frac(ns, size):
    whole, rest = divmod(ns, size)
    if not rest:
        return str(whole)
    digits = str(rest).rjust(len(str(size)) - 1, "0").rstrip("0")
    return f"{whole}.{digits}"


def healthcheck_struct(hc):
    """Go's %q of a *HealthConfig, as the classic builder writes it into history."""
    retries = hc.get("Retries", 0)
    return (f"&{{{go_q_list(hc.get('Test') or [])} {go_quote(go_duration(hc.get('Interval', 0)))} "
            f"{go_quote(go_duration(hc.get('Timeout', 0)))} {go_quote(go_duration(hc.get('StartPeriod', 0)))} "
            f"'\\x{retries:02x}'}}")


def nop(shell, text, one_word=False):
    """created_by of a step that runs nothing: `#(nop) ` and the text as one word (COPY, ADD,
    WORKDIR) or as two (the others: hence their two spaces)."""
    return " ".join(list(shell) + (["#(nop) " + text] if one_word else ["#(nop) ", text]))


def parse_duration(text, what):
    """Go's time.ParseDuration for HEALTHCHECK flags (`30s`, `1m30s`, `500ms`)."""
    import re
    from pyctr.errors import PyctrError
    units = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 1_000_000_000,
             "m": 60_000_000_000, "h": 3600_000_000_000}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)", text)
    if text == "0":
        return 0
    if not parts or "".join(a + b for a, b in parts) != text:
        raise PyctrError(f"HEALTHCHECK {what}: time: invalid duration {text!r}")
    return int(sum(float(a) * units[b] for a, b in parts))
