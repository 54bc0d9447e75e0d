"""Task Stats: the container's cgroup counters as io.containerd.cgroups.v1.Metrics (pids, cpu,
memory), read from v1 controllers or the unified hierarchy, whichever holds them."""
import os

from pyrunc_shim.oom import _cgroup_paths
from pyrunc_shim.pb.containerd import cgroups_metrics_pb2 as m


def _read(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return ""


def _int(path):
    v = _read(path)
    return int(v) if v.isdigit() else 0


def collect(pid):
    out = m.Metrics()
    try:
        paths = _cgroup_paths(pid)
    except OSError:
        return out
    v2 = "/sys/fs/cgroup" if os.path.exists("/sys/fs/cgroup/cgroup.controllers") else "/sys/fs/cgroup/unified"
    if "pids" in paths:
        d = "/sys/fs/cgroup/pids" + paths["pids"]
    else:
        d = v2 + paths.get("", "/")
    out.pids.current = _int(d + "/pids.current")
    lim = _read(d + "/pids.max")
    out.pids.limit = int(lim) if lim.isdigit() else 0
    if "cpuacct" in paths:
        d = "/sys/fs/cgroup/cpu,cpuacct" + paths["cpuacct"]
        if not os.path.isdir(d):
            d = "/sys/fs/cgroup/cpuacct" + paths["cpuacct"]
        out.cpu.usage.total = _int(d + "/cpuacct.usage")
    if "memory" in paths:
        d = "/sys/fs/cgroup/memory" + paths["memory"]
        out.memory.usage.usage = _int(d + "/memory.usage_in_bytes")
        out.memory.usage.max = _int(d + "/memory.max_usage_in_bytes")
        out.memory.usage.limit = _int(d + "/memory.limit_in_bytes")
        out.memory.usage.failcnt = _int(d + "/memory.failcnt")
    return out
