#!/usr/bin/env python3
"""Shim footprint and log throughput, side by side in one run:
  RSS per idle container (median of N containers; the shim's process(es) for each container summed):
    containerd-shim-runc-v2 and containerd-shim-pyrunc-v2 under a private containerd (runc under
    both), conmon and pyrunc-shim (daemonless) with runc under them. containerd-shim-pyrunc-v2 is
    measured idle, i.e. in its lean mode: an idle shim execs itself into lean.py after LEAN_AFTER
    (1.5 s) without a request, so the benchmark waits until every one of its shims runs lean.py
    (up to 60 s; it says how many did), then 2 s more, before reading any RSS (the runc-v2 shims
    get the same wait).
  Log throughput: seconds for a container's 200 MB of stdout (100-byte lines) to reach the log
    (runtime start -> exit file written, which both monitors do after the log is drained and synced):
    conmon k8s-file, pyrunc-shim k8s-file and json-file.
Bars (issue 7): pyrunc-shim and containerd-shim-pyrunc-v2 RSS <= containerd-shim-runc-v2's; its log throughput >= conmon's.
Run as root from the repository: .venv/bin/python3 bench/shim.py [--containers 10] [--mb 200]"""
import argparse
import json
import os
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
from integration.helpers.bundle import config_for, make_bundle  # noqa: E402

RUNC = shutil.which("runc") or "/usr/sbin/runc"
CONMON = shutil.which("conmon") or "/usr/bin/conmon"
PYSHIM = os.path.join(REPO, ".venv", "bin", "pyrunc-shim")


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def children(pid):
    out = []
    for t in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{t}/children") as f:
                out += [int(x) for x in f.read().split()]
        except OSError:
            pass
    return out


def start_monitor(monitor, d, cid, args, *flags):
    bundle = os.path.join(d, cid)
    make_bundle(bundle, config=config_for(list(args)))
    os.makedirs(os.path.join(d, "s"), exist_ok=True)  # conmon does not create it
    os.makedirs(os.path.join(d, "exits"), exist_ok=True)
    r, w = os.pipe()
    argv = [monitor, "--api-version", "1", "-c", cid, "-u", cid, "-r", RUNC, "-b", bundle,
            "-p", os.path.join(bundle, "pidfile"), "-P", os.path.join(bundle, "monitor.pid"),
            "--exit-dir", os.path.join(d, "exits"), "--runtime-arg", "--root", "--runtime-arg", os.path.join(d, "root"),
            "--socket-dir-path", os.path.join(d, "s"), "--log-level", "error", *flags]
    if os.path.basename(monitor) == "pyrunc-shim":
        argv.remove("--log-level")
        argv.remove("error")
    subprocess.run(argv, env=dict(os.environ, _OCI_SYNCPIPE=str(w)), pass_fds=(w,), check=True,
                   stdout=subprocess.DEVNULL)
    os.close(w)
    ready, _, _ = select.select([r], [], [], 60)
    line = os.read(r, 4096) if ready else b"{}"
    os.close(r)
    msg = json.loads(line)
    if msg.get("data", -1) <= 0:
        raise SystemExit(f"{monitor}: create failed: {msg}")
    with open(os.path.join(bundle, "monitor.pid")) as f:
        return int(f.read())


def runc(d, *args):
    subprocess.run([RUNC, "--root", os.path.join(d, "root"), *args], check=True, capture_output=True)


def idle_rss_monitor(monitor, n):
    d = tempfile.mkdtemp(prefix="bench-shim-")
    ids, rss = [], []
    try:
        for i in range(n):
            cid = f"idle{i}"
            pid = start_monitor(monitor, d, cid, ["sleep", "100000"], "-l", f"k8s-file:{d}/{cid}.log")
            runc(d, "start", cid)
            ids.append((cid, pid))
        time.sleep(2)
        for cid, pid in ids:
            rss.append(rss_kib(pid) + sum(rss_kib(c) for c in children(pid) if _is_monitorish(c)))
    finally:
        for cid, _ in ids:
            subprocess.run([RUNC, "--root", os.path.join(d, "root"), "delete", "-f", cid], capture_output=True)
        _wait_gone([p for _, p in ids])
        shutil.rmtree(d, ignore_errors=True)
    return statistics.median(rss)


def _is_monitorish(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip() not in ("sleep",)
    except OSError:
        return False


def _wait_gone(pids, timeout=30):
    deadline = time.monotonic() + timeout
    while any(os.path.exists(f"/proc/{p}") and _state(p) != "Z" for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)


def _state(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "Z"


def throughput(monitor, fmt, mb):
    d = tempfile.mkdtemp(prefix="bench-shim-")
    cid = "tp"
    try:
        line = "x" * 99
        pid = start_monitor(monitor, d, cid, ["sh", "-c", f"yes {line} | head -c {mb * 1000 * 1000}"],
                            "-l", f"{fmt}:{d}/tp.log")
        t0 = time.monotonic()
        runc(d, "start", cid)
        exit_file = os.path.join(d, "exits", cid)
        while not os.path.exists(exit_file):
            time.sleep(0.01)
        dt = time.monotonic() - t0
        size = os.path.getsize(f"{d}/tp.log")
        _wait_gone([pid])
        runc(d, "delete", "-f", cid)
        return dt, size
    finally:
        shutil.rmtree(d, ignore_errors=True)


def idle_rss_containerd(runtime_type, n):
    from integration.shim.containerd import Containerd
    from integration.shim.conftest import IMAGE
    from integration.shim.images import build_docker_archive
    c = Containerd()
    rss = []
    try:
        tar = os.path.join(c.dir, "busybox.tar")
        build_docker_archive(tar, IMAGE)
        c.ctr("image", "import", tar)
        # the stock shim's default runc root (/run/containerd/runc/<ns>) would outlive the benchmark
        extra = ["--runtime-config-path", c.runtime_config(RUNC)] if "pyrunc" in runtime_type else \
            ["--runc-root", os.path.join(c.dir, "runc")]
        for i in range(n):
            c.ctr("run", "-d", "--runtime", runtime_type, *extra, IMAGE, f"idle{i}", "sleep", "100000")
        deadline = time.monotonic() + 60
        while True:
            shims, lean = _containerd_shims(c.address)
            if lean == len(shims) == n or time.monotonic() > deadline or "pyrunc" not in runtime_type:
                break
            time.sleep(0.5)
        time.sleep(2)
        shims, lean = _containerd_shims(c.address)
        rss = [sum(rss_kib(p) for p in ps) for ps in shims.values()]
        for i in range(n):
            c.ctr("tasks", "kill", "-s", "KILL", f"idle{i}", check=False)
        for i in range(n):
            for _ in range(100):
                if c.ctr("tasks", "delete", f"idle{i}", check=False).returncode == 0:
                    break
                time.sleep(0.1)
            c.ctr("containers", "delete", f"idle{i}", check=False)
    finally:
        problems = c.stop()
        if problems:
            print(f"  (containerd left: {problems})")
    return statistics.median(rss) if rss else float("nan"), len(rss), lean


def _containerd_shims(address):
    """-> ({container id: [shim pids]}, how many pyrunc shims run their lean mode) for the idle*
    containers of the containerd at address (containerd-shim-runc-v2, or pyrunc's shim in either
    mode, see argv_mode)."""
    from integration.shim.containerd import argv_mode, shim_processes
    shims, lean = {}, 0
    for pid, argv in shim_processes(address):
        cid = argv[argv.index(b"-id") + 1].decode()
        if not cid.startswith("idle"):
            continue
        if b"runc-v2" in argv[0]:
            shims.setdefault(cid, []).append(pid)
        elif argv_mode(argv):
            shims.setdefault(cid, []).append(pid)
            lean += argv_mode(argv) == "lean"
    return shims, lean


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--containers", type=int, default=10)
    ap.add_argument("--mb", type=int, default=200)
    ap.add_argument("--skip-containerd", action="store_true")
    a = ap.parse_args()
    n = a.containers
    print(f"RSS per idle container (median of {n}, KiB):")
    res = {}
    if not a.skip_containerd:
        for rt in ("io.containerd.runc.v2", "io.containerd.pyrunc.v2"):
            v, found, lean = idle_rss_containerd(rt, n)
            res[rt] = v
            print(f"  {rt:28s} {v:8.0f}  ({found} shims found" + (f", {lean} in lean mode)" if "pyrunc" in rt else ")"))
    for name, mon in (("conmon", CONMON), ("pyrunc-shim (daemonless)", PYSHIM)):
        res[name] = idle_rss_monitor(mon, n)
        print(f"  {name:28s} {res[name]:8.0f}")
    print(f"Log throughput, {a.mb} MB of 100-byte lines (runtime start -> exit file):")
    tp = {}
    for name, mon, fmt in (("conmon k8s-file", CONMON, "k8s-file"), ("pyrunc-shim k8s-file", PYSHIM, "k8s-file"),
                           ("pyrunc-shim json-file", PYSHIM, "json-file")):
        dt, size = throughput(mon, fmt, a.mb)
        tp[name] = dt
        print(f"  {name:28s} {dt:7.2f} s  ({a.mb / dt:6.1f} MB/s of output; log {size / 1e6:.0f} MB)")
    if "io.containerd.runc.v2" in res:
        print(f"bar RSS: pyrunc-shim {res['pyrunc-shim (daemonless)']:.0f} KiB vs containerd-shim-runc-v2 "
              f"{res['io.containerd.runc.v2']:.0f} KiB: "
              f"{'met' if res['pyrunc-shim (daemonless)'] <= res['io.containerd.runc.v2'] else 'MISSED'}")
    if "io.containerd.pyrunc.v2" in res:
        v, bar = res["io.containerd.pyrunc.v2"], res["io.containerd.runc.v2"]
        print(f"bar RSS: containerd-shim-pyrunc-v2 {v:.0f} KiB vs containerd-shim-runc-v2 {bar:.0f} KiB: "
              f"{'met' if v <= bar else 'MISSED'}")
    print(f"bar throughput: pyrunc-shim k8s-file {tp['pyrunc-shim k8s-file']:.2f} s vs conmon "
          f"{tp['conmon k8s-file']:.2f} s: {'met' if tp['pyrunc-shim k8s-file'] <= tp['conmon k8s-file'] else 'MISSED'}")


if __name__ == "__main__":
    main()
