from pyrunc.cli import require_id
from pyrunc.cli.flags import Flag
from pyrunc.errors import UsageError

USAGE = "[command options] <container-id>"
FLAGS = [
    Flag("interval", "str", "5s", "set the stats collection interval"),
    Flag("stats", "bool", help="display the container's stats then exit"),
]


def parse_duration(text):
    """Go's time.ParseDuration for the units an interval uses: "5s", "500ms", "1m30s", "2h"."""
    units = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
    total, number, i = 0.0, "", 0
    if text in ("0", ""):
        raise UsageError(f"invalid interval {text!r}: must be positive")
    while i < len(text):
        ch = text[i]
        if ch.isdigit() or ch == ".":
            number += ch
            i += 1
            continue
        unit = next((u for u in ("ns", "us", "µs", "ms", "s", "m", "h") if text.startswith(u, i)), None)
        if unit is None or not number:
            raise UsageError(f"time: invalid duration {text!r}")
        try:
            total += float(number) * units[unit]
        except ValueError:
            raise UsageError(f"time: invalid duration {text!r}") from None
        number, i = "", i + len(unit)
    if number or total <= 0:
        raise UsageError(f"time: invalid duration {text!r}")
    return total


def run(ctx, opts, args):
    import sys
    from pyrunc import fastjson
    from pyrunc.lifecycle import events
    container_id = require_id(args, "events")
    interval = parse_duration(opts["interval"])
    store = ctx.store()
    if opts["stats"]:
        sys.stdout.write(fastjson.dumps(events.stats_once(store, container_id)) + "\n")
        return 0

    def emit(event):
        sys.stdout.write(fastjson.dumps(event) + "\n")
        sys.stdout.flush()

    try:
        events.stream(store, container_id, interval, emit)
    except BrokenPipeError:
        pass
    return 0
