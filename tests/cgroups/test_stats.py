"""`events` data (runc's types.Stats JSON) from v1 and v2 files in stand-in directories."""
from pyrunc.cgroups import stats
from pyrunc.cgroups.v1 import V1Manager
from pyrunc.cgroups.v2 import V2Manager


def _dir(tmp_path, name, files):
    d = tmp_path / name
    d.mkdir()
    for fname, value in files.items():
        (d / fname).write_text(value)
    return str(d)


def test_v2_stats(tmp_path):
    d = _dir(tmp_path, "ctr", {
        "cpu.stat": "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 10\nnr_throttled 4\n"
                    "throttled_usec 20\n",
        "memory.current": "4096\n", "memory.max": "max\n", "memory.peak": "8192\n",
        "memory.events": "low 0\nhigh 0\nmax 3\noom 1\noom_kill 2\n",
        "memory.stat": "anon 100\nfile 200\n", "memory.swap.current": "0\n", "memory.swap.max": "0\n",
        "pids.current": "3\n", "pids.max": "max\n",
        "io.stat": "8:0 rbytes=10 wbytes=20 rios=1 wios=2 dbytes=0 dios=0\n",
        "hugetlb.2MB.current": "0\n", "hugetlb.2MB.events": "max 0\n",
    })
    m = V2Manager({"": d}, [])
    data = stats.collect(m)
    assert data["cpu"] == {"usage": {"total": 1_500_000, "kernel": 500_000, "user": 1_000_000},
                           "throttling": {"periods": 10, "throttledPeriods": 4, "throttledTime": 20_000}}
    assert data["memory"]["usage"] == {"limit": stats.MAX_UINT64, "usage": 4096, "max": 8192, "failcnt": 3}
    assert data["memory"]["cache"] == 200 and data["memory"]["raw"] == {"anon": 100, "file": 200}
    assert data["pids"] == {"current": 3}
    assert data["blkio"]["ioServiceBytesRecursive"] == [
        {"major": 8, "op": "Read", "value": 10}, {"major": 8, "op": "Write", "value": 20}]
    assert data["hugetlb"] == {"2MB": {"failcnt": 0}}
    assert stats.oom_kills(m) == 2


def test_v1_stats_on_hybrid(tmp_path):
    acct = _dir(tmp_path, "cpuacct", {"cpuacct.usage": "123\n", "cpuacct.usage_percpu": "100 23 \n",
                                      "cpuacct.stat": "user 2\nsystem 1\n"})
    cpu = _dir(tmp_path, "cpu", {"cpu.stat": "nr_periods 5\nnr_throttled 1\nthrottled_time 777\n"})
    mem = _dir(tmp_path, "memory", {"memory.limit_in_bytes": "1048576\n", "memory.usage_in_bytes": "4096\n",
                                    "memory.max_usage_in_bytes": "8192\n", "memory.failcnt": "7\n",
                                    "memory.stat": "cache 11\nrss 22\n",
                                    "memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 4\n"})
    pids = _dir(tmp_path, "pids", {"pids.current": "2\n", "pids.max": "9\n"})
    blkio = _dir(tmp_path, "blkio", {"blkio.throttle.io_service_bytes_recursive": "8:0 Read 5\nTotal 5\n"})
    unified = _dir(tmp_path, "unified", {"hugetlb.2MB.current": "0\n", "hugetlb.2MB.events": "max 1\n"})
    m = V1Manager({"cpuacct": acct, "cpu": cpu, "memory": mem, "pids": pids, "blkio": blkio,
                   "": unified}, [], version="hybrid")
    data = stats.collect(m)
    assert data["cpu"]["usage"] == {"total": 123, "percpu": [100, 23], "kernel": 10_000_000,
                                    "user": 20_000_000}
    assert data["cpu"]["throttling"] == {"periods": 5, "throttledPeriods": 1, "throttledTime": 777}
    assert data["memory"]["usage"] == {"limit": 1048576, "usage": 4096, "max": 8192, "failcnt": 7}
    assert data["memory"]["swap"] == {"limit": 0, "failcnt": 0}
    assert data["memory"]["cache"] == 11
    assert data["pids"] == {"current": 2, "limit": 9}
    assert data["blkio"] == {"ioServiceBytesRecursive": [{"major": 8, "op": "Read", "value": 5}]}
    assert data["hugetlb"] == {"2MB": {"failcnt": 1}}  # hugetlb lives on the unified side here
    assert stats.oom_kills(m) == 4
