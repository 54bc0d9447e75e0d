"""The systemd cgroup driver (`--systemd-cgroup`), as runc's: a transient scope unit per container.

cgroupsPath is "slice:prefix:name" (empty: system.slice, prefix "runc", the container id, as runc
does). The unit `<prefix>-<name>.scope` is started in the slice over D-Bus with the intermediate's
pid, Delegate=yes and the resource properties systemd understands; systemd then owns the cgroup and
no `systemctl daemon-reload` undoes our limits. Everything after that (the cgroup files systemd has
no property for, freezer, pids, stats, kill) goes through the same cgroupfs code as the fs driver,
on the scope's directories, resolved the way runc resolves them.

Everything here but the manager's join/destroy/update is pure and unit-tested.
"""
import os

from ..errors import InvalidSpec, StepError
from . import resources as rs
from .v1 import V1Manager
from .v2 import V2Manager

DEFAULT_SLICE = "system.slice"
DEFAULT_PREFIX = "runc"  # runc's ScopePrefix for an empty cgroupsPath: same unit names as runc
DEFAULT_CPU_PERIOD = 100000
USEC_INFINITY = 2**64 - 1


# --- names and paths -----------------------------------------------------------------------------

def parse_cgroups_path(cgroups_path, container_id):
    """(slice, prefix, name) as runc's specconv: "" -> (system.slice, runc, id)."""
    if not cgroups_path:
        return DEFAULT_SLICE, DEFAULT_PREFIX, container_id
    parts = cgroups_path.split(":")
    if len(parts) != 3:
        raise InvalidSpec("linux.cgroupsPath", 'expected "slice:prefix:name" for systemd cgroups, '
                          f"got {cgroups_path!r}")
    return parts[0] or DEFAULT_SLICE, parts[1], parts[2]


def unit_name(prefix, name):
    """runc's getUnitName: a scope unless the name asks for a slice."""
    if name.endswith(".slice"):
        return name
    return f"{prefix}-{name}.scope" if prefix else f"{name}.scope"


def expand_slice(slice_name):
    """systemd's slice nesting as a path: "a-b.slice" -> "/a.slice/a-b.slice", "-.slice" -> "/"."""
    suffix = ".slice"
    if len(slice_name) <= len(suffix) or not slice_name.endswith(suffix) or "/" in slice_name:
        raise InvalidSpec("linux.cgroupsPath", f"invalid slice name {slice_name!r}")
    stem = slice_name[:-len(suffix)]
    if stem == "-":
        return "/"
    path, prefix = "", ""
    for component in stem.split("-"):
        if not component:  # "a--b.slice", "-a.slice", "a-.slice"
            raise InvalidSpec("linux.cgroupsPath", f"invalid slice name {slice_name!r}")
        path += "/" + prefix + component + suffix
        prefix += component + "-"
    return path


def unit_paths(hierarchies, mode, slice_path, unit, pid1_own=None):
    """{key: cgroup dir} of the unit in every hierarchy.

    On v1/hybrid, below pid 1's own cgroup minus "init.scope" (systemd in a container, as runc's
    getSubsystemPath); on v2 right below the mountpoint, as runc's unified driver.
    """
    paths = {}
    for h in hierarchies:
        base = h.mountpoint
        if mode != "v2" and pid1_own:
            own = next((pid1_own[k] for k in h.keys if k in pid1_own), "/")
            own = os.path.normpath(own)
            if os.path.basename(own) == "init.scope":
                own = os.path.dirname(own)
            base = os.path.normpath(h.mountpoint + "/" + own)
        cgdir = os.path.normpath(base + "/" + slice_path + "/" + unit)
        for key in h.keys:
            paths[key] = cgdir
    return paths


# --- properties ----------------------------------------------------------------------------------

def unit_properties(unit, slice_name, name, pid, v2):
    """The properties every unit gets (runc's Apply): before the resource ones."""
    props = [("Description", ("s", "libcontainer container " + name))]
    if unit.endswith(".slice"):
        props.append(("Wants", ("as", [slice_name])))
    else:
        props.append(("Slice", ("s", slice_name)))
        props.append(("Delegate", ("b", True)))
    if pid is not None:
        props.append(("PIDs", ("au", [pid])))
    props += [("MemoryAccounting", ("b", True)), ("CPUAccounting", ("b", True)),
              ("IOAccounting" if v2 else "BlockIOAccounting", ("b", True)),
              ("TasksAccounting", ("b", True)), ("DefaultDependencies", ("b", False))]
    return props


def resource_properties(res, v2, systemd_version, rules=None, proc_devices=""):
    """linux.resources -> [(property, (signature, value))], runc's gen{V1,V2}ResourcesProperties.

    rules: device_rules() output (None: leave devices alone, as `update` does). Values systemd has
    no property for are written to the cgroup files afterwards by apply.py, as runc does.
    """
    res = res or {}
    props = [] if rules is None else device_properties(rules, proc_devices)
    mem = res.get("memory") or {}
    cpu = res.get("cpu") or {}
    limit = mem.get("limit") or 0
    if limit:
        props.append(("MemoryMax" if v2 else "MemoryLimit", ("t", _u64(limit))))
    if v2:
        if mem.get("reservation"):
            props.append(("MemoryLow", ("t", _u64(mem["reservation"]))))
        swap = rs.swap_to_v2(mem.get("swap"), limit)
        if swap:
            props.append(("MemorySwapMax", ("t", _u64(swap))))
        idle = cpu.get("idle") == 1 and systemd_version >= 252
        if idle:
            props.append(("CPUWeight", ("t", 0)))
        weight = rs.shares_to_weight(cpu.get("shares") or 0)
        if weight and not idle:
            props.append(("CPUWeight", ("t", weight)))
    else:
        if cpu.get("shares"):
            props.append(("CPUShares", ("t", cpu["shares"])))
    props += cpu_quota_properties(cpu.get("quota") or 0, cpu.get("period") or 0, systemd_version)
    if not v2 and (res.get("blockIO") or {}).get("weight"):
        props.append(("BlockIOWeight", ("t", res["blockIO"]["weight"])))
    pids_limit = (res.get("pids") or {}).get("limit")
    if pids_limit is not None and (pids_limit > 0 or pids_limit == -1):
        props.append(("TasksMax", ("t", _u64(pids_limit))))
    if systemd_version >= 244:  # AllowedCPUs/AllowedMemoryNodes are systemd 244's
        for key, prop in (("cpus", "AllowedCPUs"), ("mems", "AllowedMemoryNodes")):
            if cpu.get(key):
                props.append((prop, ("ay", range_to_bits(cpu[key], f"linux.resources.cpu.{key}"))))
    if v2:
        props += unified_properties(res.get("unified") or {}, systemd_version)
    return props


def _u64(value):
    return USEC_INFINITY if value == -1 else value


def cpu_quota_properties(quota, period, systemd_version):
    """CPUQuotaPerSecUSec (and CPUQuotaPeriodUSec from systemd 242), runc's addCpuQuota."""
    props = []
    if period and systemd_version >= 242:
        props.append(("CPUQuotaPeriodUSec", ("t", period)))
    if quota or period:
        per_sec = USEC_INFINITY
        if quota > 0:
            # systemd keeps a whole percent: round up so the cfs quota is at least what was asked.
            per_sec = quota * 1000000 // (period or DEFAULT_CPU_PERIOD)
            if per_sec % 10000:
                per_sec = (per_sec // 10000 + 1) * 10000
        props.append(("CPUQuotaPerSecUSec", ("t", per_sec)))
    return props


def range_to_bits(text, where="linux.resources.cpu.cpus"):
    """"0-2,5" -> the little-endian bitmask bytes systemd takes for AllowedCPUs (runc's RangeToBits)."""
    mask = 0
    for part in text.strip().split(","):
        part = part.strip()
        if not part:
            continue
        lo, sep, hi = part.partition("-")
        try:
            lo, hi = int(lo), int(hi) if sep else int(lo)
        except ValueError:
            raise InvalidSpec(where, f"invalid cpu/memory node list {text!r}") from None
        if lo < 0 or hi < lo:
            raise InvalidSpec(where, f"invalid range {part!r} in {text!r}")
        for bit in range(lo, hi + 1):
            mask |= 1 << bit
    return mask.to_bytes(max(1, (mask.bit_length() + 7) // 8), "little")


_UNIFIED_MEMORY = {"memory.min": "MemoryMin", "memory.low": "MemoryLow",
                   "memory.high": "MemoryHigh", "memory.max": "MemoryMax",
                   "memory.swap.max": "MemorySwapMax"}


def unified_properties(unified, systemd_version):
    """The linux.resources.unified keys systemd has a property for (runc's unifiedResToSystemdProps);
    the files are written as well, so a key left out here still takes effect."""
    props = []
    for key, value in unified.items():
        where = f"linux.resources.unified.{key}"
        value = str(value).strip()
        if key in _UNIFIED_MEMORY or key == "pids.max":
            num = USEC_INFINITY if value == "max" else _num(value, where)
            props.append((_UNIFIED_MEMORY.get(key, "TasksMax"), ("t", num)))
        elif key == "cpu.weight":
            props.append(("CPUWeight", ("t", _num(value, where))))
        elif key == "cpu.max":
            fields = value.split()
            quota = -1 if fields[0] == "max" else _num(fields[0], where)
            period = _num(fields[1], where) if len(fields) > 1 else 0
            if quota > 0:
                props += cpu_quota_properties(quota, period, systemd_version)
            else:
                props.append(("CPUQuotaPerSecUSec", ("t", USEC_INFINITY)))
        elif key in ("cpuset.cpus", "cpuset.mems") and systemd_version >= 244:
            prop = "AllowedCPUs" if key == "cpuset.cpus" else "AllowedMemoryNodes"
            props.append((prop, ("ay", range_to_bits(value, where))))
    return props


def _num(value, where):
    try:
        return int(value)
    except ValueError:
        raise InvalidSpec(where, f"invalid value {value!r}") from None


# --- devices -------------------------------------------------------------------------------------

def device_properties(rules, proc_devices=""):
    """DevicePolicy/DeviceAllow for device_rules() output, as runc's generateDeviceProperties.

    systemd takes an allow-list only: rules are replayed like the kernel's v1 devices cgroup, an
    allow-all that later denies something cannot be said and becomes deny-all here (our own device
    filter, written after, still enforces the exact rules).
    """
    from .devices_emulator import emulate
    state = emulate(rules)
    allow_all, entries = state.default_allow, state.exceptions
    if allow_all:
        # With denials this is a deny-list, which systemd cannot express: deny all (runc warns too).
        return [("DevicePolicy", ("s", "strict" if entries else "auto")), ("DeviceAllow", ("a(ss)", []))]
    allow = []
    for (kind, major, minor), perms in state.ordered():
        name = "char" if kind == "c" else "block"
        if major is None:
            if minor is not None:
                continue  # "*:n" has no systemd spelling (runc skips it too)
            path = f"{name}-*"
        elif minor is None:
            group = device_group(proc_devices, kind, major)
            if not group:
                continue  # no driver group for that major: systemd could not match it anyway
            path = f"{name}-{group}"
        else:
            path = f"/dev/{name}/{major}:{minor}"
        allow.append((path, perms))
    return [("DevicePolicy", ("s", "strict")), ("DeviceAllow", ("a(ss)", allow))]


def device_group(proc_devices, kind, major):
    """The /proc/devices name of a major ("pts" for char 136), or ""."""
    section = None
    for line in proc_devices.splitlines():
        line = line.strip()
        if line.endswith("devices:"):
            section = "c" if line.startswith("Character") else "b"
            continue
        fields = line.split(None, 1)
        if section == kind and len(fields) == 2 and fields[0] == str(major):
            return fields[1]
    return ""


def read_proc_devices():
    try:
        with open("/proc/devices") as f:
            return f.read()
    except OSError:
        return ""


# --- the managers --------------------------------------------------------------------------------

def open_systemd_manager(cgroups_path, container_id, hierarchies, mode, pid1_cgroup_text):
    from .mountinfo import parse_self_cgroup

    slice_name, prefix, name = parse_cgroups_path(cgroups_path, container_id)
    unit = unit_name(prefix, name)
    # A slice-named container goes right below its parent, not nested by name (runc does so too).
    slice_path = expand_slice(slice_name)
    pid1_own = parse_self_cgroup(pid1_cgroup_text) if mode != "v2" and pid1_cgroup_text else None
    paths = unit_paths(hierarchies, mode, slice_path, unit, pid1_own)
    info = {"driver": "systemd", "unit": unit, "slice": slice_name, "name": name}
    if mode == "v2":
        return SystemdV2Manager(paths, hierarchies, (), info)
    return SystemdV1Manager(paths, hierarchies, (), info, version=mode)


def from_state(data):
    from .mountinfo import Hierarchy

    try:
        info = {k: data[k] for k in ("driver", "unit", "slice", "name")}
        started = bool(data.get("started", True))
        version, paths = data["version"], dict(data["paths"])
        hierarchies = [Hierarchy.from_dict(h) for h in data["hierarchies"]]
        created = list(data.get("created", ()))
    except (KeyError, TypeError) as exc:
        raise StepError("load cgroup state", None, f"missing or malformed field {exc}") from None
    if version == "v2":
        return SystemdV2Manager(paths, hierarchies, created, info, started=started)
    return SystemdV1Manager(paths, hierarchies, created, info, version=version, started=started)


class _SystemdDriver:
    """The systemd parts over a V1Manager/V2Manager (put first in the bases)."""

    driver = "systemd"

    def _init_unit(self, info, started):
        self.unit, self.slice, self.name = info["unit"], info["slice"], info["name"]
        self._pending = None   # (resources, devices) to apply once the unit exists
        # Loaded from state: create succeeded, so the unit was ours. Fresh: not until join().
        self._started = started

    def create(self):
        # Nothing to make yet: a scope cannot exist without a process, so the unit is started
        # (and the cgroup made) by join() with the intermediate's pid, as runc's Apply(pid).
        if self.freezer_state() == "FROZEN":
            raise StepError("create cgroup", self._freezer()[3],
                            "the cgroup already exists and is frozen")

    def before_apply(self, res, config_devices, update):
        """apply.py's hook: True when the writes are deferred until join()."""
        if not update and not self._started:
            self._pending = (res, config_devices)
            return True
        if update:
            from .dbus import Systemd
            with Systemd() as sd:
                props = resource_properties(res, self.version == "v2", sd.version())
                if props:
                    sd.set_unit_properties(self.unit, props)
        return False

    def self_join(self):
        # The first join starts the unit with the child's pid: systemd must see the pid.
        return super().self_join() if self._started else None

    def join(self, pid):
        if self._started:
            return super().join(pid)
        from .dbus import Systemd

        res, devices = self._pending or ({}, ())
        v2 = self.version == "v2"
        scope = not self.unit.endswith(".slice")
        with Systemd() as sd:
            props = unit_properties(self.unit, self.slice, self.name, pid if scope else None, v2)
            rules = rs.device_rules(res, devices)
            props += resource_properties(res, v2, sd.version(), rules, read_proc_devices())
            sd.start_transient_unit(self.unit, props, ignore_exists=not scope)
        self._started = True
        # What systemd leaves to us: v1 controllers it does not manage (cpuset, freezer, ...) and
        # every cgroup file it has no property for (runc's joinCgroups + Set).
        try:
            for h in self.hierarchies:
                self._create_in(h, self.paths[h.keys[0]])
            super().join(pid)
            from .apply import apply
            apply(self, res, devices)
        except BaseException:
            try:
                self.destroy()
            except StepError:
                pass  # the join error is the one to report
            raise

    # Until the unit is ours, its cgroup (if any) belongs to someone else: nothing in it is ours
    # to list, signal or remove (a failed create cleans up through these).
    def pids(self):
        return super().pids() if self._started else []

    def kill_all(self, sig):
        if self._started:
            super().kill_all(sig)

    def owned(self):
        # A scope is started for one container (systemd refuses an existing one): it is the
        # container's own once started, and nothing of it is before.
        return self._started

    def destroy(self):
        from .dbus import Systemd
        from .manager import _remove_tree

        if not self._started:
            # The unit never started (refused, e.g. it exists for another container): nothing
            # here is ours, and stopping that unit would tear the other container down.
            return
        error = None
        try:
            with Systemd() as sd:
                sd.stop_unit(self.unit)
        except StepError as exc:
            error = exc  # still clean up what we can by hand, then report it
        # runc's fs fallback: whatever systemd did not remove (v1 controllers it never knew).
        mountpoints = {h.mountpoint for h in self.hierarchies}
        for cgdir in self._dirs():
            if cgdir in mountpoints:
                continue
            try:
                _remove_tree(cgdir)
            except StepError as exc:
                error = error or exc
            if cgdir in self.created:
                self.created.remove(cgdir)
        try:
            super().destroy()
        except StepError as exc:
            error = error or exc
        if error is not None:
            raise error

    def to_state(self):
        data = super().to_state()
        data.update(driver="systemd", unit=self.unit, slice=self.slice, name=self.name,
                    started=self._started)
        return data


class SystemdV1Manager(_SystemdDriver, V1Manager):
    def __init__(self, paths, hierarchies, created, info, version="v1", started=False):
        V1Manager.__init__(self, paths, hierarchies, created, version=version)
        self._init_unit(info, started)


class SystemdV2Manager(_SystemdDriver, V2Manager):
    def __init__(self, paths, hierarchies, created, info, started=False):
        V2Manager.__init__(self, paths, hierarchies, created)
        self._init_unit(info, started)

    def _create_in(self, hierarchy, cgdir):
        # Delegate=yes: systemd made the scope and enabled the slices' controllers; writing the
        # slices' subtree_control is its business, not ours.
        self._mkdir_p(hierarchy.mountpoint, cgdir)
