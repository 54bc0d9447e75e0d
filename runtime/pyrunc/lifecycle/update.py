"""update: change a running container's resources (runc's flags, or a LinuxResources JSON).

The new values are merged into the resources recorded at create (and by earlier updates), the whole
set is written again (v2 swap needs the limit, v1 orders memory against memsw), and the merged set
is saved so the next update starts from it. Devices are never changed by update (as runc).
"""
from pyrunc.errors import InvalidSpec, InvalidState, UsageError
from pyrunc.lifecycle.container import cgroup_of, load
from pyrunc.state import status as st

_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def ram_in_bytes(text, flag):
    """go-units RAMInBytes ("512", "20m", "1.5GiB", "10 KB": binary multiples), and runc's "-1"."""
    if text.strip() == "-1":
        return -1
    s = text.strip().lower()
    if s.endswith("b"):
        s = s[:-1]
    if s.endswith("i"):
        s = s[:-1]
    unit = s[-1:] if s[-1:] in _UNITS and s[-1:] != "" and not s[-1:].isdigit() else ""
    number = s[:-1].strip() if unit else s
    try:
        value = float(number)
    except ValueError:
        raise UsageError(f"invalid value {text!r} for flag --{flag}: not a size") from None
    if value < 0:
        raise UsageError(f"invalid value {text!r} for flag --{flag}: negative size")
    return int(value * _UNITS[unit])


def _int(text, flag):
    try:
        return int(text, 10)
    except ValueError:
        raise UsageError(f"invalid value {text!r} for flag --{flag}: not an integer") from None


# flag -> (section, key, parser)
FLAG_MAP = {
    "memory": ("memory", "limit", ram_in_bytes),
    "memory-reservation": ("memory", "reservation", ram_in_bytes),
    "memory-swap": ("memory", "swap", ram_in_bytes),
    "kernel-memory": ("memory", "kernel", ram_in_bytes),
    "kernel-memory-tcp": ("memory", "kernelTCP", ram_in_bytes),
    "cpu-share": ("cpu", "shares", _int),
    "cpu-quota": ("cpu", "quota", _int),
    "cpu-period": ("cpu", "period", _int),
    "cpu-burst": ("cpu", "burst", _int),
    "cpu-rt-period": ("cpu", "realtimePeriod", _int),
    "cpu-rt-runtime": ("cpu", "realtimeRuntime", _int),
    "cpu-idle": ("cpu", "idle", _int),
    "cpuset-cpus": ("cpu", "cpus", lambda v, f: v),
    "cpuset-mems": ("cpu", "mems", lambda v, f: v),
    "pids-limit": ("pids", "limit", _int),
    "blkio-weight": ("blockIO", "weight", _int),
}


def resources_from_flags(values):
    """{flag: text} of the flags given -> a LinuxResources dict with only those set."""
    res = {}
    for flag, text in values.items():
        if text is None or flag not in FLAG_MAP:
            continue
        section, key, parse = FLAG_MAP[flag]
        res.setdefault(section, {})[key] = parse(text, flag)
    if "kernel" in res.get("memory", {}):
        res["memory"].pop("kernel")  # runc ignores it too: the kernel dropped kmem limits
    mem = res.get("memory", {})
    if mem.get("limit") == -1 and "swap" not in mem:
        mem["swap"] = -1  # "unlimited memory" without a swap value: unlimited swap too (runc)
    return res


def merge(current, new):
    """The recorded resources with `new` laid over them, section by section."""
    merged = {k: (dict(v) if isinstance(v, dict) else v) for k, v in (current or {}).items()}
    for section, value in new.items():
        if isinstance(value, dict) and isinstance(merged.get(section), dict) and section != "unified":
            merged[section].update(value)
        else:
            merged[section] = value
    return merged


def update(store, container_id, new):
    if not isinstance(new, dict):
        raise InvalidSpec("", "must be a JSON object (runtime-spec LinuxResources)", "resources")
    state, status = load(store, container_id)
    if status == st.STOPPED:
        raise InvalidState("container not running", status)
    cgroup = cgroup_of(state)
    if cgroup is None:
        raise InvalidState("container has no cgroup", status)
    config = state.setdefault("config", {})
    linux = config.setdefault("linux", {})
    merged = merge(linux.get("resources"), {k: v for k, v in new.items() if k != "devices"})
    from pyrunc.cgroups.apply import apply
    apply(cgroup, merged, update=True)
    linux["resources"] = merged
    store.save(container_id, state)
