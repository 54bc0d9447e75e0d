from pyrunc.cli import require_id

USAGE = "<container-id>"
FLAGS = []


def run(ctx, opts, args):
    from pyrunc.lifecycle.start import start
    start(ctx.store(), require_id(args, "start"))
    return 0
