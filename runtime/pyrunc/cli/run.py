from pyrunc.cli import create as _create
from pyrunc.cli import require_id
from pyrunc.cli.flags import Flag

USAGE = "[command options] <container-id>"
FLAGS = _create.FLAGS + [
    Flag("detach|d", "bool", help="detach from the container's process"),
    Flag("keep", "bool", help="do not delete the container after it exits"),
    Flag("no-subreaper", "bool", help="disable the use of the subreaper used to reap reparented processes",
         hidden=True),
]


def run(ctx, opts, args):
    from pyrunc.lifecycle.run import run as run_container
    return run_container(ctx, require_id(args, "run"), _create.options(opts, detach=opts["detach"]),
                         keep=opts["keep"])
