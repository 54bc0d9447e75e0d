from pyrunc.cli.flags import Flag
from pyrunc.errors import UsageError

USAGE = "[command options] <container-id> [signal]"
STOP_AT_POSITIONAL = True  # runc: flag parsing stops after the id
FLAGS = [Flag("all|a", "bool", help="send the specified signal to all processes inside the container", hidden=True)]


def run(ctx, opts, args):
    from pyrunc.lifecycle.kill import kill, parse_signal
    if not args:
        raise UsageError('"pyrunc kill" requires a container id argument')
    if len(args) > 2:
        raise UsageError('"pyrunc kill" requires 1 or 2 arguments')
    sig = parse_signal(args[1]) if len(args) > 1 else 15
    kill(ctx.store(), args[0], sig, opts["all"])
    return 0
