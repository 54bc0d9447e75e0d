"""Container statistics as runc's `events` prints them (runc types.Stats), from v1 or v2 files.

Each controller is read from its v1 hierarchy when the host has one, else from the unified
hierarchy (a hybrid host keeps some controllers, such as hugetlb, on v2 only). A file that does not
exist reads as 0: a controller that is missing has nothing to report.
"""
import os

from . import fs

USER_HZ_NS = 10_000_000  # cpuacct.stat counts USER_HZ (100 Hz) ticks
MAX_UINT64 = (1 << 64) - 1


def _read(cgdir, name):
    if cgdir is None:
        return None
    try:
        return fs.read(os.path.join(cgdir, name))
    except OSError:
        return None


def _num(cgdir, name, max_value=0):
    text = _read(cgdir, name)
    if text is None:
        return 0
    text = text.strip()
    if text == "max":
        return max_value
    try:
        return int(text)
    except ValueError:
        return 0


def _kv(cgdir, name):
    text = _read(cgdir, name) or ""
    out = {}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        try:
            out[key] = int(value)
        except ValueError:
            pass
    return out


def oom_kills(manager):
    """How many processes the kernel's OOM killer has killed in the container's cgroup."""
    if "memory" in manager.paths and manager.version != "v2":
        return _kv(manager.paths["memory"], "memory.oom_control").get("oom_kill", 0)
    return _kv(manager.paths.get(""), "memory.events").get("oom_kill", 0)


def omit_empty(value):
    """Go's omitempty for the fields that have it: drop 0, "", [] and {}."""
    return {k: v for k, v in value.items() if v not in (0, "", [], {}, None)}


def collect(manager):
    v1 = manager.version != "v2"
    unified = manager.paths.get("")

    def where(controller):
        if v1 and controller in manager.paths:
            return manager.paths[controller], True
        return unified, False

    return {
        "cpu": _cpu(where("cpuacct"), where("cpu")),
        "memory": _memory(*where("memory")),
        "pids": _pids(*where("pids")),
        "blkio": _blkio(*(where("blkio") if v1 and "blkio" in manager.paths else where("io"))),
        "hugetlb": _hugetlb(*where("hugetlb")),
        "intel_rdt": {},
        "network_interfaces": None,
    }


def _cpu(acct, cpu):
    acct_dir, acct_v1 = acct
    cpu_dir, cpu_v1 = cpu
    if acct_v1:
        ticks = _kv(acct_dir, "cpuacct.stat")
        percpu = [int(x) for x in (_read(acct_dir, "cpuacct.usage_percpu") or "").split()]
        usage = {"total": _num(acct_dir, "cpuacct.usage"), "percpu": percpu,
                 "kernel": ticks.get("system", 0) * USER_HZ_NS, "user": ticks.get("user", 0) * USER_HZ_NS}
    else:
        stat = _kv(acct_dir, "cpu.stat")
        usage = {"total": stat.get("usage_usec", 0) * 1000, "kernel": stat.get("system_usec", 0) * 1000,
                 "user": stat.get("user_usec", 0) * 1000}
    usage = {**omit_empty({k: usage[k] for k in ("total", "percpu") if k in usage}),
             "kernel": usage["kernel"], "user": usage["user"]}
    stat = _kv(cpu_dir, "cpu.stat")
    throttled_time = stat.get("throttled_time", 0) if cpu_v1 else stat.get("throttled_usec", 0) * 1000
    throttling = omit_empty({"periods": stat.get("nr_periods", 0),
                             "throttledPeriods": stat.get("nr_throttled", 0),
                             "throttledTime": throttled_time})
    return {"usage": usage, "throttling": throttling}


def _entry(limit, usage, max_usage, failcnt):
    return {"limit": limit, **omit_empty({"usage": usage, "max": max_usage}), "failcnt": failcnt}


def _memory(cgdir, v1):
    if v1:
        raw = _kv(cgdir, "memory.stat")
        out = {"cache": raw.get("cache", 0)}
        for key, prefix in (("usage", "memory."), ("swap", "memory.memsw."),
                            ("kernel", "memory.kmem."), ("kernelTCP", "memory.kmem.tcp.")):
            out[key] = _entry(_num(cgdir, prefix + "limit_in_bytes"), _num(cgdir, prefix + "usage_in_bytes"),
                              _num(cgdir, prefix + "max_usage_in_bytes"), _num(cgdir, prefix + "failcnt"))
    else:
        raw = _kv(cgdir, "memory.stat")
        events = _kv(cgdir, "memory.events")
        out = {"cache": raw.get("file", 0),
               "usage": _entry(_num(cgdir, "memory.max", MAX_UINT64), _num(cgdir, "memory.current"),
                               _num(cgdir, "memory.peak"), events.get("max", 0)),
               "swap": _entry(_num(cgdir, "memory.swap.max", MAX_UINT64),
                              _num(cgdir, "memory.swap.current"), 0, 0),
               "kernel": _entry(0, 0, 0, 0), "kernelTCP": _entry(0, 0, 0, 0)}
    out["raw"] = raw
    return omit_empty({k: out[k] for k in ("cache", "raw")}) | \
        {k: out[k] for k in ("usage", "swap", "kernel", "kernelTCP")}


def _pids(cgdir, v1):
    return omit_empty({"current": _num(cgdir, "pids.current"), "limit": _num(cgdir, "pids.max")})


def _blkio(cgdir, v1):
    if v1:
        out = {}
        for key, name in (("ioServiceBytesRecursive", "blkio.throttle.io_service_bytes_recursive"),
                          ("ioServicedRecursive", "blkio.throttle.io_serviced_recursive")):
            entries = []
            for line in (_read(cgdir, name) or "").splitlines():
                parts = line.split()
                if len(parts) == 3 and ":" in parts[0]:
                    major, minor = parts[0].split(":")
                    entries.append(omit_empty({"major": int(major), "minor": int(minor), "op": parts[1],
                                               "value": int(parts[2])}))
            out[key] = entries
        return omit_empty(out)
    # io.stat: "8:0 rbytes=1 wbytes=2 rios=3 wios=4 ..."
    service, serviced = [], []
    for line in (_read(cgdir, "io.stat") or "").splitlines():
        dev, *fields = line.split()
        major, minor = (int(x) for x in dev.split(":"))
        values = dict(f.split("=", 1) for f in fields if "=" in f)
        for key, op, target in (("rbytes", "Read", service), ("wbytes", "Write", service),
                                ("rios", "Read", serviced), ("wios", "Write", serviced)):
            if key in values:
                target.append(omit_empty({"major": major, "minor": minor, "op": op,
                                          "value": int(values[key])}))
    return omit_empty({"ioServiceBytesRecursive": service, "ioServicedRecursive": serviced})


def _hugetlb(cgdir, v1):
    out = {}
    try:
        names = os.listdir(cgdir) if cgdir else []
    except OSError:
        return out
    suffix = ".usage_in_bytes" if v1 else ".current"
    for name in sorted(names):
        if not (name.startswith("hugetlb.") and name.endswith(suffix)) or ".rsvd." in name:
            continue
        size = name[len("hugetlb."):-len(suffix)]
        if v1:
            entry = {"usage": _num(cgdir, name), "max": _num(cgdir, f"hugetlb.{size}.max_usage_in_bytes"),
                     "failcnt": _num(cgdir, f"hugetlb.{size}.failcnt")}
        else:
            entry = {"usage": _num(cgdir, name), "max": 0,
                     "failcnt": _kv(cgdir, f"hugetlb.{size}.events").get("max", 0)}
        out[size] = omit_empty({"usage": entry["usage"], "max": entry["max"]}) | {"failcnt": entry["failcnt"]}
    return out
