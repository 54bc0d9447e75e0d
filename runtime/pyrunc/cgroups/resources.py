"""linux.resources -> cgroup files: pure translation for v1 and v2, as runc does it.

v1_files() and v2_files() return the (controller, file, value) writes in the order they must reach
the kernel; they read nothing and write nothing, so every conversion is unit-tested from a dict.
apply.py does the writing. Conventions kept from runc: a value of 0 (or a missing key) leaves the
file alone, -1 means unlimited ("max" on v2, "-1" on v1), and pids.limit 0 is a real limit (runtime-
spec 1.3: no new tasks at all) while a negative one is "max".
"""
from ..errors import InvalidSpec

# runc's AllowedDevices: what every container may use, appended after config.json's own rules
# (mknod of any char/block node, the standard /dev nodes, ptys, /dev/net/tun). A default with a
# path is dropped when linux.devices names that path: the config's device takes its place.
DEFAULT_ALLOWED_DEVICES = (
    {"allow": True, "type": "c", "major": None, "minor": None, "access": "m"},
    {"allow": True, "type": "b", "major": None, "minor": None, "access": "m"},
    {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm", "path": "/dev/null"},
    {"allow": True, "type": "c", "major": 1, "minor": 8, "access": "rwm", "path": "/dev/random"},
    {"allow": True, "type": "c", "major": 1, "minor": 7, "access": "rwm", "path": "/dev/full"},
    {"allow": True, "type": "c", "major": 5, "minor": 0, "access": "rwm", "path": "/dev/tty"},
    {"allow": True, "type": "c", "major": 1, "minor": 5, "access": "rwm", "path": "/dev/zero"},
    {"allow": True, "type": "c", "major": 1, "minor": 9, "access": "rwm", "path": "/dev/urandom"},
    {"allow": True, "type": "c", "major": 136, "minor": None, "access": "rwm"},  # /dev/pts/*
    {"allow": True, "type": "c", "major": 5, "minor": 2, "access": "rwm"},    # /dev/ptmx
    {"allow": True, "type": "c", "major": 10, "minor": 200, "access": "rwm"},  # /dev/net/tun
)

WHERE = "linux.resources"


def _int(section, key, value, where):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidSpec(f"{where}.{section}.{key}", f"must be an integer, got {value!r}")
    return value


def _get(res, section, key, where=WHERE):
    return _int(section, key, (res.get(section) or {}).get(key), where)


def _v1_num(value):
    return str(value)


def _v2_num(value):
    """runc's numToStr: -1 is "max", 0 (unset) writes nothing."""
    if value is None or value == 0:
        return None
    return "max" if value == -1 else str(value)


def device_rules(resources, config_devices=()):
    """The ordered device cgroup rule list: config's own, then runc's defaults.

    linux.devices only creates nodes: whether the container may open one is resources.devices'
    say (runc's contract; Docker, podman and CRI add an allow rule for every device they pass).
    """
    rules = []
    for i, d in enumerate((resources or {}).get("devices") or ()):
        access = d.get("access") or "rwm"
        if set(access) - set("rwm"):
            raise InvalidSpec(f"{WHERE}.devices[{i}].access", f"{access!r} is not a subset of \"rwm\"")
        kind = d.get("type") or "a"
        if kind not in ("a", "b", "c", "u", "p"):
            raise InvalidSpec(f"{WHERE}.devices[{i}].type", f"unknown device type {kind!r}")
        rules.append({"allow": bool(d.get("allow")), "type": "c" if kind == "u" else kind,
                      "major": _wild(d.get("major")), "minor": _wild(d.get("minor")), "access": access})
    replaced = {d.get("path") for d in config_devices or ()}
    rules.extend({k: v for k, v in r.items() if k != "path"} for r in DEFAULT_ALLOWED_DEVICES
                 if r.get("path") not in replaced)
    # "p" rules have no device cgroup meaning (runc drops them too).
    return [r for r in rules if r["type"] != "p"]


def _wild(value):
    return None if value is None or value == -1 else value


def v1_files(res, update=False, devices=None):
    """[(controller, file, value)] for a cgroup v1 host. devices: device_rules() output (create only)."""
    res = res or {}
    out = []
    mem = res.get("memory") or {}
    limit, swap = _get(res, "memory", "limit"), _get(res, "memory", "swap")
    reservation = _get(res, "memory", "reservation")
    if limit == -1 and not swap:
        swap = -1  # "unlimited memory" with no swap request means unlimited memory+swap (runc)
    # The order of limit vs memsw is decided at write time against the current value (apply.py).
    if limit:
        out.append(("memory", "memory.limit_in_bytes", _v1_num(limit)))
    if swap:
        out.append(("memory", "memory.memsw.limit_in_bytes", _v1_num(swap)))
    if reservation:
        out.append(("memory", "memory.soft_limit_in_bytes", _v1_num(reservation)))
    kernel_tcp = _get(res, "memory", "kernelTCP")
    if kernel_tcp:
        out.append(("memory", "memory.kmem.tcp.limit_in_bytes", _v1_num(kernel_tcp)))
    swappiness = _get(res, "memory", "swappiness")
    if swappiness is not None:
        if not 0 <= swappiness <= 100:
            raise InvalidSpec(f"{WHERE}.memory.swappiness", f"{swappiness} is not within 0..100")
        out.append(("memory", "memory.swappiness", str(swappiness)))
    if mem.get("disableOOMKiller") and not update:
        out.append(("memory", "memory.oom_control", "1"))

    cpu = res.get("cpu") or {}
    shares = _get(res, "cpu", "shares")
    if shares:
        out.append(("cpu", "cpu.shares", str(shares)))
    # The period first: a quota is checked against the current period.
    period, quota = _get(res, "cpu", "period"), _get(res, "cpu", "quota")
    if period:
        out.append(("cpu", "cpu.cfs_period_us", str(period)))
    if quota:
        out.append(("cpu", "cpu.cfs_quota_us", str(quota)))
    burst = _get(res, "cpu", "burst")
    if burst is not None:
        out.append(("cpu", "cpu.cfs_burst_us", str(burst)))
    rt_period, rt_runtime = _get(res, "cpu", "realtimePeriod"), _get(res, "cpu", "realtimeRuntime")
    if rt_period:
        out.append(("cpu", "cpu.rt_period_us", str(rt_period)))
    if rt_runtime:
        out.append(("cpu", "cpu.rt_runtime_us", str(rt_runtime)))
    idle = _get(res, "cpu", "idle")
    if idle is not None:
        out.append(("cpu", "cpu.idle", str(idle)))
    if cpu.get("cpus"):
        out.append(("cpuset", "cpuset.cpus", str(cpu["cpus"])))
    if cpu.get("mems"):
        out.append(("cpuset", "cpuset.mems", str(cpu["mems"])))

    pids = _get(res, "pids", "limit")
    if pids is not None:
        out.append(("pids", "pids.max", str(pids) if pids >= 0 else "max"))

    out.extend(_v1_blkio(res.get("blockIO") or {}))
    for page in res.get("hugepageLimits") or ():
        out.append(("hugetlb", f"hugetlb.{page['pageSize']}.limit_in_bytes", str(page["limit"])))

    net = res.get("network") or {}
    if net.get("classID") is not None:
        out.append(("net_cls", "net_cls.classid", str(net["classID"])))
    for prio in net.get("priorities") or ():
        out.append(("net_prio", "net_prio.ifpriomap", f"{prio['name']} {prio['priority']}"))
    out.extend(("rdma", "rdma.max", line) for line in _rdma_lines(res.get("rdma")))

    if devices is not None and not update:
        from .devices_emulator import emulate, v1_writes
        out.extend(("devices", name, line) for name, line in v1_writes(emulate(devices)))
    return out


def _v1_blkio(blkio):
    out = []
    weight = blkio.get("weight")
    if weight:
        out.append(("blkio", "blkio.weight", str(weight)))
    if blkio.get("leafWeight"):
        out.append(("blkio", "blkio.leaf_weight", str(blkio["leafWeight"])))
    for wd in blkio.get("weightDevice") or ():
        dev = f"{wd['major']}:{wd['minor']}"
        if wd.get("weight"):
            out.append(("blkio", "blkio.weight_device", f"{dev} {wd['weight']}"))
        if wd.get("leafWeight"):
            out.append(("blkio", "blkio.leaf_weight_device", f"{dev} {wd['leafWeight']}"))
    for key, fname in _THROTTLES:
        for td in blkio.get(key) or ():
            out.append(("blkio", f"blkio.throttle.{fname}_device",
                        f"{td['major']}:{td['minor']} {td['rate']}"))
    return out


_THROTTLES = (("throttleReadBpsDevice", "read_bps"), ("throttleWriteBpsDevice", "write_bps"),
              ("throttleReadIOPSDevice", "read_iops"), ("throttleWriteIOPSDevice", "write_iops"))
_V2_THROTTLE_KEYS = {"read_bps": "rbps", "write_bps": "wbps", "read_iops": "riops",
                     "write_iops": "wiops"}


def _rdma_lines(rdma):
    lines = []
    for device, limits in sorted((rdma or {}).items()):
        parts = []
        if limits.get("hcaHandles") is not None:
            parts.append(f"hca_handle={limits['hcaHandles']}")
        if limits.get("hcaObjects") is not None:
            parts.append(f"hca_object={limits['hcaObjects']}")
        if parts:
            lines.append(" ".join([device] + parts))
    return lines


# --- cgroup v2 -----------------------------------------------------------------------------------

def shares_to_weight(shares):
    """cpu.shares [2..262144] -> cpu.weight [1..10000], runc's (and crun's) linear map; 0 is unset."""
    if not shares:
        return 0
    return 1 + ((shares - 2) * 9999) // 262142


def blkio_weight_to_io_weight(weight):
    """blkio.weight [10..1000] -> io.weight [1..10000] (runc's ConvertBlkIOToIOWeightValue)."""
    if not weight:
        return 0
    return 1 + (weight - 10) * 9999 // 990


def swap_to_v2(swap, limit):
    """memory.swap.max from the spec's memory+swap total (runc's ConvertMemorySwapToCgroupV2Value).

    Returns None for "leave alone", -1 for "max".
    """
    swap, limit = swap or 0, limit or 0
    if limit == -1 and swap == 0:
        return -1  # unlimited memory and no swap request: unlimited both, as on v1
    if swap in (-1, 0):
        return swap or None
    if limit in (0, -1):
        raise InvalidSpec(f"{WHERE}.memory.swap", "a swap limit needs a memory limit")
    if limit < 0:
        raise InvalidSpec(f"{WHERE}.memory.limit", f"invalid value {limit}")
    if swap < limit:
        raise InvalidSpec(f"{WHERE}.memory.swap",
                          f"memory+swap limit {swap} is below the memory limit {limit}")
    return swap - limit


def v2_files(res, bfq=False, update=False):
    """[(controller, file, value)] for a cgroup v2 cgroup; devices are a BPF program (devicefilter.py).

    bfq: the cgroup has io.bfq.weight (the BFQ scheduler), which takes blkio weights as they are.
    """
    res = res or {}
    out = []
    cpu = res.get("cpu") or {}
    shares = _get(res, "cpu", "shares")
    if shares:
        out.append(("cpu", "cpu.weight", str(shares_to_weight(shares))))
    period, quota = _get(res, "cpu", "period"), _get(res, "cpu", "quota")
    burst = _get(res, "cpu", "burst")
    if burst is not None:
        out.append(("cpu", "cpu.max.burst", str(burst)))
    if quota or period:
        value = str(quota) if quota and quota > 0 else "max"
        if period:
            value += f" {period}"
        out.append(("cpu", "cpu.max", value))
    if _get(res, "cpu", "realtimePeriod") or _get(res, "cpu", "realtimeRuntime"):
        raise InvalidSpec(f"{WHERE}.cpu.realtimeRuntime", "realtime scheduling is not supported on "
                          "cgroup v2")
    idle = _get(res, "cpu", "idle")
    if idle is not None:
        out.append(("cpu", "cpu.idle", str(idle)))
    if cpu.get("cpus"):
        out.append(("cpuset", "cpuset.cpus", str(cpu["cpus"])))
    if cpu.get("mems"):
        out.append(("cpuset", "cpuset.mems", str(cpu["mems"])))

    limit, swap = _get(res, "memory", "limit"), _get(res, "memory", "swap")
    swap_max = swap_to_v2(swap, limit)
    # swap before the limit (runc): memory.max alone never fails over swap.
    if swap_max is not None:
        out.append(("memory", "memory.swap.max", _v2_num(swap_max) or "0"))
    if _v2_num(limit):
        out.append(("memory", "memory.max", _v2_num(limit)))
    reservation = _get(res, "memory", "reservation")
    if _v2_num(reservation):
        out.append(("memory", "memory.low", _v2_num(reservation)))

    pids = _get(res, "pids", "limit")
    if pids is not None:
        out.append(("pids", "pids.max", str(pids) if pids >= 0 else "max"))

    blkio = res.get("blockIO") or {}
    weight = blkio.get("weight")
    if weight:
        if bfq:
            out.append(("io", "io.bfq.weight", str(weight)))
        else:
            out.append(("io", "io.weight", str(blkio_weight_to_io_weight(weight))))
    if bfq:
        for wd in blkio.get("weightDevice") or ():
            if wd.get("weight"):
                out.append(("io", "io.bfq.weight", f"{wd['major']}:{wd['minor']} {wd['weight']}"))
    for key, fname in _THROTTLES:
        for td in blkio.get(key) or ():
            rate = "max" if td["rate"] == 0 else str(td["rate"])
            out.append(("io", "io.max", f"{td['major']}:{td['minor']} {_V2_THROTTLE_KEYS[fname]}={rate}"))

    for page in res.get("hugepageLimits") or ():
        out.append(("hugetlb", f"hugetlb.{page['pageSize']}.max", str(page["limit"])))
    out.extend(("rdma", "rdma.max", line) for line in _rdma_lines(res.get("rdma")))
    out.extend(unified_files(res.get("unified")))
    return out


def unified_files(unified):
    """linux.resources.unified: raw v2 files, written last so they win (runc)."""
    out = []
    for key, value in (unified or {}).items():
        controller, dot, _ = key.partition(".")
        if not dot or "/" in key or key.startswith("."):
            raise InvalidSpec(f"{WHERE}.unified.{key}", "not a cgroup v2 file name")
        if controller == "cgroup":
            raise InvalidSpec(f"{WHERE}.unified.{key}", "cgroup core files cannot be set")
        out.append((controller, key, str(value)))
    return out
