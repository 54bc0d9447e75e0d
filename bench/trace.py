#!/usr/bin/env python3
"""The traced workload's slowdown: `pyrunc create --trace` against `strace -f -p` on the same
created container, and untraced, interleaved.

Usage (as root):  .venv/bin/python3 bench/trace.py [--iterations 10] [--json F]

Each sample: create the container (untimed), attach the tracer (ours: `create --trace FILE`;
strace: `strace -f -qq -o FILE -p INIT` once init waits on exec.fifo, untimed), then the wall time
from `pyrunc start` until the container's init has exited (a pidfd polled) -- and, for the two
tracers, until the trace file is complete (our tracer's end, strace's exit). Modes rotate each
iteration. Two workloads: `forkexec` (a shell loop running cat and ls: fork, exec, file calls) and
`syscalls` (dd with 1-byte blocks: read/write, one process). Both tracers decode path arguments;
strace formats every argument, ours only the strings python-ptrace's prototypes name.
"""
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
sys.path[:0] = [os.path.join(REPO, "runtime"), REPO]
from integration.helpers.bundle import config_for, make_bundle, make_rootfs  # noqa: E402
from integration.helpers.runtime import add_mount  # noqa: E402

PYRUNC = os.path.join(REPO, ".venv", "bin", "pyrunc")
WORKLOADS = {
    "forkexec": "i=0; while [ $i -lt 200 ]; do i=$((i+1)); echo $i > /tmp/x; cat /tmp/x >/dev/null; "
                "ls / >/dev/null; done",
    "syscalls": "dd if=/dev/zero of=/dev/null bs=1 count=20000 2>/dev/null",
}
MODES = ("untraced", "pyrunc", "strace")


def _pyrunc(root, *args):
    subprocess.run([PYRUNC, "--root", root, *args], check=True, stdout=subprocess.DEVNULL)


def _tracer_pid(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("TracerPid:"))


def _parent(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("PPid:"))


def _wait_gone(pid, timeout=120):
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        select.select([fd], [], [], timeout)
    finally:
        os.close(fd)


def sample(mode, root, bundle, cid, trace):
    create = ["create", "--bundle", bundle] + (["--trace", trace] if mode == "pyrunc" else []) + [cid]
    _pyrunc(root, *create)
    state = json.loads(subprocess.run([PYRUNC, "--root", root, "state", cid], capture_output=True,
                                      check=True).stdout)
    pid = state["pid"]
    strace = tracer = None
    try:
        if mode == "strace":
            strace = subprocess.Popen(["strace", "-f", "-qq", "-o", trace, "-p", str(pid)])
            while _tracer_pid(pid) != strace.pid:
                time.sleep(0.005)
        elif mode == "pyrunc":
            tracer = _parent(_tracer_pid(pid))  # the process writing the file: it ends last
        t0 = time.perf_counter()
        _pyrunc(root, "start", cid)
        _wait_gone(pid)
        if strace is not None:
            strace.wait()
        if tracer:
            _wait_gone(tracer)
        return time.perf_counter() - t0
    finally:
        if strace is not None and strace.poll() is None:
            strace.kill()
            strace.wait()
        _pyrunc(root, "delete", "--force", cid)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--json")
    args = parser.parse_args()
    if shutil.which("strace") is None:
        sys.exit("strace is not installed (scripts/setup installs it)")
    work = tempfile.mkdtemp(prefix="pyrunc-bench-trace-")
    root = os.path.join(work, "root")
    results = {}
    try:
        template = make_rootfs(os.path.join(work, "template"))
        for name, script in WORKLOADS.items():
            config = config_for(["sh", "-c", script])
            add_mount(config, "/tmp", "tmpfs", "tmpfs", ["nosuid", "size=1m"])
            config["linux"].pop("cgroupsPath", None)
            bundle = os.path.join(work, name)
            make_bundle(bundle, config=config, rootfs_template=template)
            samples = {m: [] for m in MODES}
            for i in range(args.iterations + 1):  # the first round is warmup
                for k in range(len(MODES)):
                    mode = MODES[(i + k) % len(MODES)]
                    dt = sample(mode, root, bundle, f"bench-trace-{os.getpid()}", os.path.join(work, "trace"))
                    if i:
                        samples[mode].append(dt * 1000)
            med = {m: statistics.median(v) for m, v in samples.items()}
            results[name] = {"samples_ms": samples, "median_ms": med,
                             "slowdown": {m: med[m] / med["untraced"] for m in ("pyrunc", "strace")},
                             "pyrunc_vs_strace": med["pyrunc"] / med["strace"]}
            print(f"{name:9} untraced {med['untraced']:8.1f} ms | pyrunc --trace {med['pyrunc']:8.1f} ms "
                  f"(x{med['pyrunc'] / med['untraced']:.2f}) | strace -f {med['strace']:8.1f} ms "
                  f"(x{med['strace'] / med['untraced']:.2f}) | pyrunc/strace {med['pyrunc'] / med['strace']:.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
