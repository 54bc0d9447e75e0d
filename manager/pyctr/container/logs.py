"""Reading a container's json-file log (Docker's format, written by the monitor; rotated files
<log>.N ... <log>.1 before <log>): --tail, --since/--until, -t, -f."""
import json
import os
import time


def parse_time(spec, now=None):
    """Docker's forms: RFC 3339 (date, or date and time, Z or offset), unix seconds[.ns], or a
    duration before now (10m, 1h30m, 42s)."""
    import re
    from datetime import datetime, timezone
    now = time.time() if now is None else now
    s = spec.strip()
    if re.fullmatch(r"\d+(\.\d+)?", s):
        return float(s)
    m = re.fullmatch(r"((\d+(\.\d+)?)(h|m|s|ms|us|ns))+", s)
    if m:
        total = 0.0
        for num, unit in re.findall(r"(\d+(?:\.\d+)?)(h|ms|us|ns|m|s)", s):
            total += float(num) * {"h": 3600, "m": 60, "s": 1, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}[unit]
        return now - total
    try:
        frac = re.match(r"^(.*?\d\d:\d\d:\d\d)(\.\d+)?(.*)$", s)
        base, extra = (frac.group(1) + frac.group(3), float(frac.group(2) or 0)) if frac else (s, 0.0)
        dt = datetime.fromisoformat(base.replace("Z", "+00:00"))
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=timezone.utc)
        return dt.timestamp() + extra
    except ValueError:
        from pyctr.container.errors import CommandError
        raise CommandError(f"invalid value for \"since\"/\"until\": {spec!r} (RFC 3339, unix seconds or a "
                           f"duration such as 10m)") from None


def entry_time(ts):
    """Docker's json-file time (RFC 3339 with nanoseconds) -> float seconds."""
    return parse_time(ts) if ts else 0.0


def _files(path):
    olds = []
    n = 1
    while os.path.exists(f"{path}.{n}"):
        olds.append(f"{path}.{n}")
        n += 1
    return list(reversed(olds)) + [path]


def _entries(data):
    for line in data.splitlines():
        try:
            e = json.loads(line)
        except ValueError:
            continue
        if isinstance(e, dict) and isinstance(e.get("log"), str):
            yield e


def write(entries, timestamps, out, err):
    for e in entries:
        dst = err if e.get("stream") == "stderr" else out
        text = e["log"]
        if timestamps:
            text = e.get("time", "") + " " + text
        dst.write(text.encode("utf-8", "surrogateescape"))
    out.flush()
    err.flush()


def read(path, tail=None, since=None, until=None):
    out = []
    for p in _files(path):
        try:
            with open(p, "rb") as f:
                out.extend(_entries(f.read()))
        except FileNotFoundError:
            continue
    if since is not None or until is not None:
        out = [e for e in out if (since is None or entry_time(e.get("time")) >= since)
               and (until is None or entry_time(e.get("time")) <= until)]
    if tail is not None:
        out = out[-tail:] if tail > 0 else []
    return out


def follow(path, is_running, timestamps, out, err, since=None, until=None, offset=0):
    """Print what is appended to the current log file until the container stops (then what is left)."""
    pending = b""
    ino = None
    while True:
        running = is_running()
        try:
            with open(path, "rb") as f:
                st = os.fstat(f.fileno())
                if ino is not None and (st.st_ino != ino or st.st_size < offset):
                    offset = 0  # rotated or truncated
                ino = st.st_ino
                f.seek(offset)
                data = f.read()
                offset += len(data)
        except FileNotFoundError:
            data = b""
        data = pending + data
        complete, _, pending = data.rpartition(b"\n")
        entries = list(_entries(complete))
        if since is not None or until is not None:
            entries = [e for e in entries if (since is None or entry_time(e.get("time")) >= since)
                       and (until is None or entry_time(e.get("time")) <= until)]
        write(entries, timestamps, out, err)
        if not running:
            return
        time.sleep(0.1)
