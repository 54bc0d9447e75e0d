"""Writing linux.resources into a container's cgroup: at create (with devices) and by `update`.

The translation is resources.py; this only routes each file to the right directory, orders the
memory/swap pair against the current value as runc does, and names the file on failure.
"""
import os

from ..errors import InvalidSpec, StepError
from . import fs
from . import resources as rs


def apply(manager, res, config_devices=(), update=False):
    """Write `res` (a linux.resources dict) into `manager`'s cgroup.

    At create (update=False) the device rules are applied too: runc's defaults plus
    config_devices (linux.devices), on v1 through devices.allow/deny, on v2 as a BPF program.
    """
    res = res or {}
    if manager.version != "v2" and res.get("unified"):
        # Refused before anything is written (runc: on a v1 or hybrid host its cgroup managers
        # refuse `unified` outright, though a hybrid host mounts cgroup2 without controllers).
        raise InvalidSpec(f"{rs.WHERE}.unified", "invalid configuration: cannot use unified on cgroup v1")
    # The systemd driver hands resources to systemd first (and at create, only once the unit exists).
    before = getattr(manager, "before_apply", None)
    if before is not None and before(res, config_devices, update):
        return
    if manager.version == "v2":
        _apply_v2(manager, res, config_devices, update)
    else:
        _apply_v1(manager, res, config_devices, update)


def _apply_v1(manager, res, config_devices, update):
    devices = None if update else rs.device_rules(res, config_devices)
    writes = rs.v1_files(res, update=update, devices=devices)
    if (res.get("memory") or {}).get("checkBeforeUpdate") and update:
        _check_usage(manager.paths.get("memory"), "memory.usage_in_bytes", res)
    writes = _order_v1_memory(manager, writes)
    for controller, name, value in writes:
        cgdir = manager.paths.get(controller)
        if cgdir is None:
            raise StepError(f"set {name}", None, f"the {controller} cgroup controller is not mounted")
        _write(cgdir, name, value)


def _order_v1_memory(manager, writes):
    """memsw must stay >= limit at every step: raise memsw first when the limit goes up."""
    names = [w[1] for w in writes]
    if "memory.limit_in_bytes" not in names or "memory.memsw.limit_in_bytes" not in names:
        return writes
    i, j = names.index("memory.limit_in_bytes"), names.index("memory.memsw.limit_in_bytes")
    swap = int(writes[j][2])
    try:
        current = int(fs.read(os.path.join(manager.paths["memory"], "memory.limit_in_bytes")))
    except (OSError, ValueError, KeyError):
        current = 0
    if swap == -1 or current < swap:
        writes = list(writes)
        writes[i], writes[j] = writes[j], writes[i]
    return writes


def _apply_v2(manager, res, config_devices, update):
    cgdir = manager.paths[""]
    bfq = os.path.exists(os.path.join(cgdir, "io.bfq.weight"))
    writes = rs.v2_files(res, bfq=bfq, update=update)
    if (res.get("memory") or {}).get("checkBeforeUpdate") and update:
        _check_usage(cgdir, "memory.current", res)
    for _, name, value in writes:
        _write(cgdir, name, value)
    if not update:
        from .devicefilter import attach_device_filter
        attach_device_filter(cgdir, rs.device_rules(res, config_devices))


def _check_usage(cgdir, usage_file, res):
    limit = (res.get("memory") or {}).get("limit") or 0
    if limit <= 0 or cgdir is None:
        return
    try:
        usage = int(fs.read(os.path.join(cgdir, usage_file)))
    except (OSError, ValueError) as exc:
        raise StepError("read", os.path.join(cgdir, usage_file), exc) from exc
    if usage >= limit:
        raise StepError("update memory limit", cgdir, f"the new limit {limit} is below the current "
                        f"usage {usage} (memory.checkBeforeUpdate)")


def _write(cgdir, name, value):
    path = os.path.join(cgdir, name)
    try:
        fs.write(path, value)
    except OSError as exc:
        raise StepError(f"write {value!r} to", path, exc) from exc
