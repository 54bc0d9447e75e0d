#!/usr/bin/env python3
"""Pods through containerd 1.6's CRI plugin (a private containerd, integration/cri/cri.py), per
runtime handler, interleaved in one run:
  pod start    RunPodSandbox + CreateContainer + StartContainer of one container, and of three
               (wall time of the CRI calls, as the kubelet waits for them)
  idle memory  PSS of the handler's shim processes per pod, with --pods pods of one container each
               running and idle (after --idle seconds: pyrunc's shim goes lean after 1.5 s)
Handlers: pyrunc (io.containerd.pyrunc.v2), runc-pyrunc (io.containerd.runc.v2 + pyrunc),
runc (io.containerd.runc.v2 + runc), crun (io.containerd.runc.v2 + crun).
Bar (issue 19): pyrunc's pod start <= 1.0x runc's; its idle PSS per pod <= runc's.
Run as root from the repository: .venv/bin/python3 bench/cri.py [--rounds 5] [--pods 5] [--handlers ...]"""
import argparse
import os
import statistics
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.join(REPO, "shim"))
from integration.cri.cri import CriContainerd  # noqa: E402
from integration.cri.pods import Pod  # noqa: E402

ALL = ("pyrunc", "runc-pyrunc", "runc")  # crun: "cgroups in hybrid mode not supported" on this host


def pss_kib(pid):
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def shim_kind(handler):
    return "pyrunc" if handler == "pyrunc" else "runc"


def start_pod(cri, handler, n, tag):
    t0 = time.perf_counter()
    pod = Pod(cri, handler, f"b{tag}")
    for i in range(n):
        pod.container(f"c{i}", "sleep", "100000")
    return pod, time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--pods", type=int, default=5)
    ap.add_argument("--idle", type=float, default=4.0)
    ap.add_argument("--handlers", nargs="*", default=list(ALL))
    a = ap.parse_args()
    cri = CriContainerd()
    times = {(h, n): [] for h in a.handlers for n in (1, 3)}
    pss = {h: [] for h in a.handlers}
    problems = []
    try:
        for h in a.handlers:  # warm-up: images unpacked, the runtimes' caches
            pod, _ = start_pod(cri, h, 1, f"w{h}")
            pod.remove()
        seq = 0
        for r in range(a.rounds):
            order = a.handlers[r % len(a.handlers):] + a.handlers[:r % len(a.handlers)]
            for n in (1, 3):
                for h in order:
                    seq += 1
                    pod, t = start_pod(cri, h, n, f"{seq}")
                    times[(h, n)].append(t)
                    pod.remove()
        for h in a.handlers:  # idle memory: all pods of one handler at a time
            before = set(cri.shims())
            pods = [start_pod(cri, h, 1, f"i{h}{i}")[0] for i in range(a.pods)]
            time.sleep(a.idle)
            mine = [pid for pid, kind in cri.shims().items() if pid not in before and kind == shim_kind(h)]
            pss[h] = [sum(pss_kib(p) for p in mine) / a.pods, len(mine)]
            for p in pods:
                p.remove()
    finally:
        problems = cri.stop()
    base = {n: statistics.median(times[("runc", n)]) for n in (1, 3)} if "runc" in a.handlers else None
    print(f"Pod start through the CRI (median of {a.rounds}, interleaved), and idle shim PSS per pod "
          f"({a.pods} pods of one container):")
    print(f"{'handler':<12} {'1 container':>14} {'3 containers':>14} {'PSS/pod':>10} {'shims':>6}")
    for h in a.handlers:
        cells = []
        for n in (1, 3):
            m = statistics.median(times[(h, n)]) * 1000
            rel = f" {m / 1000 / base[n]:.2f}x" if base else ""
            cells.append(f"{m:7.0f} ms{rel}")
        print(f"{h:<12} {cells[0]:>14} {cells[1]:>14} {pss[h][0] / 1024:7.1f} MB {pss[h][1]:>6}")
    if problems:
        print(f"left behind: {problems}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
