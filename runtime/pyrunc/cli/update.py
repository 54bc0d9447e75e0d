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
        import sys
        from pyrunc import fastjson
        try:
            if source == "-":
                text = sys.stdin.buffer.read().decode()
            else:
                with open(source, "rb") as f:
                    text = f.read().decode()
        except (OSError, UnicodeDecodeError) as e:
            raise StepError("read resources", source, e) from None
        try:
            new = fastjson.loads(text)
        except PyruncError as e:
            raise PyruncError(f"resources {source}: {e}") from None
    else:
        new = resources_from_flags({name: opts[name.replace("-", "_")] for name in FLAG_MAP})
    update(ctx.store(), container_id, new)
    return 0
