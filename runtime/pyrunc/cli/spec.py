from pyrunc.cli.flags import Flag

USAGE = "[command options]"
FLAGS = [
    Flag("bundle|b", "str", "", "path to the root of the bundle directory"),
    Flag("rootless", "bool", help="generate a configuration for a rootless container"),
]


def run(ctx, opts, args):
    from pyrunc import fastjson as json
    import os
    from pyrunc.errors import PyruncError
    from pyrunc.spec.template import default_config, rootless
    config = default_config()
    if opts["rootless"]:
        config = rootless(config)
    path = os.path.join(opts["bundle"] or ".", "config.json")
    if opts["bundle"] and not os.path.isdir(opts["bundle"]):
        raise PyruncError(f"bundle {opts['bundle']!r} is not a directory")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except FileExistsError:
        raise PyruncError("File config.json exists. Remove it first") from None
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps(config, indent="\t"))  # no final newline: runc's bytes exactly
    return 0
