"""`pyrunc seccomp record [--from-default] TRACE...`: a seccomp profile from `--trace` files, on
stdout; and `run --seccomp-profile-out FILE` (traced_for_profile)."""
import os
import sys

from pyrunc.cli.flags import Flag
from pyrunc.errors import UsageError

USAGE = "record [--from-default] <trace-file>..."
FLAGS = [
    Flag("from-default", "bool", help="start from Docker's default profile and add what the traces need beyond it"),
    Flag("output|o", "str", "", "write the profile to FILE instead of stdout"),
]


def profile_from(paths, from_default=False):
    from pyrunc.linux.seccomp import record
    observed = record.read_traces(paths)
    if from_default:
        return record.from_default_profile(observed, record.native_arch())
    return record.recorded_profile(observed)


def _emit(profile, output):
    import json
    text = json.dumps(profile, indent=2) + "\n"
    if not output:
        sys.stdout.write(text)
        return
    from pyrunc.state.atomic import write_atomic
    try:
        write_atomic(os.path.abspath(output), text.encode(), mode=0o644)
    except OSError as e:
        from pyrunc.errors import StepError
        raise StepError("write seccomp profile", output, e) from None


def run(ctx, opts, args):
    if not args or args[0] != "record":
        raise UsageError(f"usage: pyrunc seccomp {USAGE}")
    if len(args) < 2:
        raise UsageError('"pyrunc seccomp record" requires at least one trace file')
    _emit(profile_from(args[1:], opts["from_default"]), opts["output"])
    return 0


def traced_for_profile(create_opts, output, run_container):
    """Run traced (into --trace FILE, or a file of our own removed afterwards), then write the profile."""
    if create_opts.detach:
        raise UsageError("--seccomp-profile-out needs a foreground run (not --detach): the profile is "
                         "written when the container has exited")
    own = None
    if not create_opts.trace:
        import tempfile
        fd, own = tempfile.mkstemp(prefix=".pyrunc-trace-", suffix=".jsonl",
                                   dir=os.path.dirname(os.path.abspath(output)))
        os.close(fd)
        create_opts.trace = own
    try:
        status = run_container()
        _emit(profile_from([create_opts.trace]), output)
        return status
    finally:
        if own is not None:
            os.unlink(own)
