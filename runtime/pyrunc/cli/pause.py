"""pause and resume (resume.py is this module's other half)."""
from pyrunc.cli import require_id

USAGE = "<container-id>"
FLAGS = []


def run(ctx, opts, args):
    from pyrunc.lifecycle.pause import pause
    pause(ctx.store(), require_id(args, "pause"))
    return 0


def run_resume(ctx, opts, args):
    from pyrunc.lifecycle.pause import resume
    resume(ctx.store(), require_id(args, "resume"))
    return 0
