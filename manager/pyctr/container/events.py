"""The store's own append-only event log (containers/events.log): one JSON line per event, written
with O_APPEND in one write (whole lines, whatever runs at once); `pyctr events` reads it."""
import json
import os
import time

MAX_LOG = 8 << 20  # beyond this the log starts over (the newest events matter)


def path(ctx):
    return os.path.join(ctx.containers.base, "events.log")


def emit(ctx, action, rec, **attrs):
    now = time.time_ns()
    ev = {"status": action, "id": rec["Id"], "from": rec["Config"].get("Image", ""), "Type": "container",
          "Action": action, "Actor": {"ID": rec["Id"], "Attributes": {
              "image": rec["Config"].get("Image", ""), "name": rec["Name"], **{k: str(v) for k, v in attrs.items()}}},
          "scope": "local", "time": now // 10**9, "timeNano": now}
    p = path(ctx)
    try:
        if os.path.getsize(p) > MAX_LOG:
            os.rename(p, p + ".1")
    except OSError:
        pass
    fd = os.open(p, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, (json.dumps(ev) + "\n").encode())
    finally:
        os.close(fd)


def read(ctx):
    out = []
    for p in (path(ctx) + ".1", path(ctx)):
        try:
            with open(p, "rb") as f:
                for line in f:
                    try:
                        out.append(json.loads(line))
                    except ValueError:
                        continue
        except FileNotFoundError:
            continue
    return out
