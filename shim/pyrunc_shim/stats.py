"""Task Stats: io.containerd.cgroups.v1.Metrics from the runtime's own `events --stats` JSON (runc's
libcontainer types, which pyrunc, runc and crun print alike), so the shim reads no cgroup file
and needs no knowledge of v1/v2 layouts: cpu (total, per-cpu, user, kernel, throttling), memory
(usage/limit/max/failcnt, swap, kernel, kernel TCP, the memory.stat counters), pids, blkio,
hugetlb. Pure: unit-tested on the runtime's JSON."""
from pyrunc_shim.pb.containerd import cgroups_metrics_pb2 as m

# memory.stat key (raw) -> MemoryStat field; the total_ ones follow the same names
_MEMORY_RAW = {
    "cache": "cache", "rss": "rss", "rss_huge": "rss_huge", "mapped_file": "mapped_file", "dirty": "dirty",
    "writeback": "writeback", "pgpgin": "pg_pg_in", "pgpgout": "pg_pg_out", "pgfault": "pg_fault",
    "pgmajfault": "pg_maj_fault", "inactive_anon": "inactive_anon", "active_anon": "active_anon",
    "inactive_file": "inactive_file", "active_file": "active_file", "unevictable": "unevictable",
}
_BLKIO = {
    "ioServiceBytesRecursive": "io_service_bytes_recursive", "ioServicedRecursive": "io_serviced_recursive",
    "ioQueueRecursive": "io_queued_recursive", "ioServiceTimeRecursive": "io_service_time_recursive",
    "ioWaitTimeRecursive": "io_wait_time_recursive", "ioMergedRecursive": "io_merged_recursive",
    "ioTimeRecursive": "io_time_recursive", "sectorsRecursive": "sectors_recursive",
}
_U64 = (1 << 64) - 1


def _u(v):
    try:
        v = int(v)
    except (TypeError, ValueError):
        return 0
    return v if 0 <= v <= _U64 else 0


def _entry(dst, src):
    src = src or {}
    dst.limit, dst.usage, dst.max, dst.failcnt = (_u(src.get(k)) for k in ("limit", "usage", "max", "failcnt"))


def from_runtime(data):
    """The `data` of a runtime `events --stats` object -> Metrics."""
    out = m.Metrics()
    data = data or {}
    cpu = data.get("cpu") or {}
    usage = cpu.get("usage") or {}
    u = out.cpu.usage
    u.total, u.kernel, u.user = _u(usage.get("total")), _u(usage.get("kernel")), _u(usage.get("user"))
    u.per_cpu.extend(_u(x) for x in usage.get("percpu") or [])
    th = cpu.get("throttling") or {}
    t = out.cpu.throttling
    t.periods, t.throttled_periods, t.throttled_time = (_u(th.get(k)) for k in
                                                        ("periods", "throttledPeriods", "throttledTime"))
    mem = data.get("memory") or {}
    mo = out.memory
    raw = mem.get("raw") or {}
    for key, field in _MEMORY_RAW.items():
        setattr(mo, field, _u(raw.get(key)))
        setattr(mo, "total_" + field, _u(raw.get("total_" + key)))
    mo.hierarchical_memory_limit = _u(raw.get("hierarchical_memory_limit"))
    mo.hierarchical_swap_limit = _u(raw.get("hierarchical_memsw_limit"))
    if not raw.get("total_cache") and "file" in raw:  # cgroup v2 memory.stat names
        mo.cache = mo.total_cache = _u(raw.get("file"))
        mo.rss = mo.total_rss = _u(raw.get("anon"))
    for name, field in (("usage", "usage"), ("swap", "swap"), ("kernel", "kernel"), ("kernelTCP", "kernel_tcp")):
        _entry(getattr(mo, field), mem.get(name))
    pids = data.get("pids") or {}
    out.pids.current, out.pids.limit = _u(pids.get("current")), _u(pids.get("limit"))
    blkio = data.get("blkio") or {}
    out.blkio.SetInParent()  # present even with no I/O yet, as containerd's own shim reports it
    for key, field in _BLKIO.items():
        for e in blkio.get(key) or []:
            getattr(out.blkio, field).add(op=str(e.get("op", "")), major=_u(e.get("major")),
                                          minor=_u(e.get("minor")), value=_u(e.get("value")))
    for size, h in sorted((data.get("hugetlb") or {}).items()):
        out.hugetlb.add(pagesize=size, usage=_u(h.get("usage")), max=_u(h.get("max")),
                        failcnt=_u(h.get("failcnt")))
    return out
