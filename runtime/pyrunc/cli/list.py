from pyrunc.cli.flags import Flag
from pyrunc.errors import UsageError

USAGE = "[command options]"
FLAGS = [
    Flag("format|f", "str", "table", "select one of: table or json"),
    Flag("quiet|q", "bool", help="display only container IDs"),
]


def _table(rows):
    # Go's tabwriter as runc configures it: min width 12, padding 3.
    widths = [max(12, max(len(row[i]) for row in rows) + 3) for i in range(len(rows[0]) - 1)]
    lines = []
    for row in rows:
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(row[:-1])] + [row[-1]]
        lines.append("".join(cells))
    return "\n".join(lines) + "\n"


def run(ctx, opts, args):
    import sys
    from pyrunc.cli.state import view
    from pyrunc.errors import PyruncError
    from pyrunc.lifecycle.container import load
    if opts["format"] not in ("table", "json"):
        raise UsageError(f"invalid format option: {opts['format']}")
    store = ctx.store()
    views = []
    for container_id in store.ids():
        try:
            state, status = load(store, container_id)
        except PyruncError:
            continue  # a container being created or deleted right now
        views.append(view(store, container_id, state, status))
    if opts["quiet"]:
        sys.stdout.write("".join(v["id"] + "\n" for v in views))
    elif opts["format"] == "json":
        from pyrunc import fastjson as json
        sys.stdout.write(json.dumps(views) + "\n")
    else:
        rows = [("ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER")]
        rows += [(v["id"], str(v["pid"]), v["status"], v["bundle"], v["created"], v["owner"]) for v in views]
        sys.stdout.write(_table(rows))
    return 0
