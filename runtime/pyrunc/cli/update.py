from pyrunc.cli import require_id
from pyrunc.cli.flags import Flag
from pyrunc.lifecycle.update import FLAG_MAP

USAGE = """[command options] <container-id>

The data format for the --resources/-r file is the runtime-spec "linux.resources" object:
{"memory": {"limit": 0, "reservation": 0, "swap": 0}, "cpu": {"shares": 0, "quota": 0,
 "period": 0, "cpus": "", "mems": ""}, "pids": {"limit": 0}, "blockIO": {"weight": 0}}
Given -r, the other flags are ignored (as runc)."""

_HELP = {
    "memory": "Memory limit (in bytes)",
    "memory-swap": "Total memory usage (memory + swap); set '-1' to enable unlimited swap",
    "pids-limit": "Maximum number of pids allowed in the container",
    "cpu-quota": "CPU CFS hardcap limit (in usecs). Allowed cpu time in a given period",
    "cpu-period": "CPU CFS period to be used for hardcapping (in usecs). 0 to use system default",
}
FLAGS = [Flag("resources|r", "str", None, "path to the file containing the resources to update or "
              "'-' to read from the standard input")]
FLAGS += [Flag(name, "str", None, _HELP.get(name, name.replace("-", " "))) for name in FLAG_MAP]
FLAGS += [Flag(name, "str", None, hidden=True) for name in ("l3-cache-schema", "mem-bw-schema")]


def run(ctx, opts, args):
    from pyrunc.errors import PyruncError, StepError, UsageError
    from pyrunc.lifecycle.update import resources_from_flags, update
    container_id = require_id(args, "update")
    if opts.get("l3_cache_schema") or opts.get("mem_bw_schema"):
        raise UsageError("Intel RDT is not supported")
    source = opts["resources"]
    if source is not None:
        # Read as config.json is: a regular file (or stdin) of at most MAX_DOCUMENT bytes.
        from pyrunc.spec.load import MAX_DOCUMENT, parse_json, read_document, validate_resources
        if source == "-":
            import sys
            try:
                data = sys.stdin.buffer.read(MAX_DOCUMENT + 1)
            except OSError as e:
                raise StepError("read resources", source, e) from None
            if len(data) > MAX_DOCUMENT:
                raise PyruncError(f"resources {source}: more than {MAX_DOCUMENT >> 20} MiB")
        else:
            data = read_document(source)
        new = parse_json(data, f"resources {source}")
        validate_resources(new, f"resources {source}", raw=data)
    else:
        new = resources_from_flags({name: opts[name.replace("-", "_")] for name in FLAG_MAP})
    update(ctx.store(), container_id, new)
    return 0
