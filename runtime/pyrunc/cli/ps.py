from pyrunc.cli.flags import Flag
from pyrunc.errors import UsageError

USAGE = "[command options] <container-id> [ps options]"
STOP_AT_POSITIONAL = True  # what follows the id goes to ps(1)
FLAGS = [Flag("format|f", "str", "table", "select one of: table or json")]


def run(ctx, opts, args):
    import sys
    from pyrunc.lifecycle.ps import container_pids, ps_table
    if not args:
        raise UsageError('"pyrunc ps" requires a container id argument')
    if opts["format"] not in ("table", "json"):
        raise UsageError(f"invalid format option: {opts['format']}")
    pids = container_pids(ctx.store(), args[0])
    if opts["format"] == "json":
        from pyrunc import fastjson
        sys.stdout.write(fastjson.dumps(pids) + "\n")
        return 0
    sys.stdout.write(ps_table(pids, args[1:] or ["-ef"]))
    return 0
