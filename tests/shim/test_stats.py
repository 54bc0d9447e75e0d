"""The runtime's `events --stats` JSON -> containerd's cgroups v1 Metrics."""
import os
import sys

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(_REPO, "shim"))

from pyrunc_shim import stats  # noqa: E402
from pyrunc_shim.pb.containerd import cgroups_metrics_pb2  # noqa: E402

RUNC = {"cpu": {"usage": {"total": 12, "percpu": [7, 5], "kernel": 3, "user": 9},
                "throttling": {"periods": 4, "throttledPeriods": 2, "throttledTime": 100}},
        "memory": {"usage": {"limit": 64, "usage": 10, "max": 20, "failcnt": 1}, "swap": {"usage": 11},
                   "kernelTCP": {"limit": 9},
                   "raw": {"cache": 5, "rss": 6, "total_cache": 7, "total_rss": 8, "pgfault": 3,
                           "hierarchical_memory_limit": 64, "hierarchical_memsw_limit": 128}},
        "pids": {"current": 3, "limit": 100},
        "blkio": {"ioServiceBytesRecursive": [{"major": 8, "minor": 0, "op": "Read", "value": 4096}]},
        "hugetlb": {"2MB": {"usage": 0, "max": 0, "failcnt": 0}}}


def test_runc_json_to_metrics():
    m = stats.from_runtime(RUNC)
    m = cgroups_metrics_pb2.Metrics.FromString(m.SerializeToString())
    assert (m.cpu.usage.total, list(m.cpu.usage.per_cpu), m.cpu.usage.kernel, m.cpu.usage.user) == (12, [7, 5], 3, 9)
    assert m.cpu.throttling.throttled_time == 100
    assert (m.memory.usage.limit, m.memory.usage.usage, m.memory.usage.max, m.memory.usage.failcnt) == (64, 10, 20, 1)
    assert (m.memory.cache, m.memory.rss, m.memory.total_cache, m.memory.total_rss) == (5, 6, 7, 8)
    assert m.memory.pg_fault == 3 and m.memory.hierarchical_swap_limit == 128 and m.memory.kernel_tcp.limit == 9
    assert (m.pids.current, m.pids.limit) == (3, 100)
    e = m.blkio.io_service_bytes_recursive[0]
    assert (e.major, e.minor, e.op, e.value) == (8, 0, "Read", 4096)
    assert m.hugetlb[0].pagesize == "2MB"


def test_missing_and_bad_values_are_zero():
    m = stats.from_runtime({"memory": {"usage": {"usage": -1, "limit": "x"}}, "pids": None})
    assert m.memory.usage.usage == 0 and m.memory.usage.limit == 0 and m.HasField("blkio")
    assert stats.from_runtime(None).pids.current == 0
