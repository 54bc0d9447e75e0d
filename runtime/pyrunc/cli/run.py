from pyrunc.cli import create as _create
from pyrunc.cli import require_id
from pyrunc.cli.flags import Flag

USAGE = "[command options] <container-id>"
FLAGS = _create.FLAGS + [
    Flag("detach|d", "bool", help="detach from the container's process"),
    Flag("keep", "bool", help="do not delete the container after it exits"),
    Flag("seccomp-profile-out", "str", "", "after the run, write a seccomp profile of what the container did "
         "(implies tracing; with --trace FILE the trace is kept)"),
    Flag("no-subreaper", "bool", help="disable the use of the subreaper used to reap reparented processes",
         hidden=True),
]


def run(ctx, opts, args):
    from pyrunc.lifecycle.run import run as run_container
    container_id = require_id(args, "run")
    create_opts = _create.options(opts, detach=opts["detach"])
    if opts["seccomp_profile_out"]:
        from pyrunc.cli.seccomp import traced_for_profile
        return traced_for_profile(create_opts, opts["seccomp_profile_out"],
                                  lambda: run_container(ctx, container_id, create_opts, keep=opts["keep"]))
    return run_container(ctx, container_id, create_opts, keep=opts["keep"])
