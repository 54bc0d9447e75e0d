from pyrunc.cli import require_id
from pyrunc.cli.flags import Flag

USAGE = "[command options] <container-id>"
FLAGS = [Flag("force|f", "bool", help="Forcibly deletes the container if it is still running (uses SIGKILL)")]


def run(ctx, opts, args):
    from pyrunc.lifecycle.delete import delete
    delete(ctx.store(), require_id(args, "delete"), opts["force"])
    return 0
