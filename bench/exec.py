#!/usr/bin/env python3
"""`exec <id> true` timed side by side: pyrunc against runc and crun, interleaved.

Usage (as root):  .venv/bin/python3 bench/exec.py [--iterations 30] [--runtimes pyrunc,runc,crun]

Each runtime runs one long-lived busybox container (`sleep`), created with its own --root; every
iteration times one foreground `<runtime> --root R exec ID true` per runtime (wall time around
subprocess.run, stdio /dev/null), the runtime order rotating each iteration so machine noise falls
on all alike. The exit status must be 0 (and `exec ID false` must give 1), so a broken runtime
cannot post fast fake timings. No pass/fail: prints medians, p90s and the ratios pyrunc/<other>.
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.append(os.path.join(REPO, "runtime"))

from integration.helpers.bundle import make_bundle, make_rootfs  # noqa: E402
from pyrunc.spec.template import default_config  # noqa: E402

BINARIES = {"pyrunc": os.path.join(REPO, ".venv", "bin", "pyrunc"), "runc": shutil.which("runc") or "runc",
            "crun": shutil.which("crun") or "crun"}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--iterations", type=int, default=30)
    parser.add_argument("--runtimes", default="pyrunc,runc,crun")
    opts = parser.parse_args()
    work = tempfile.mkdtemp(prefix="pyrunc-bench-exec-")
    template = make_rootfs(os.path.join(work, "rootfs-template"))
    runtimes = {}
    try:
        for name in opts.runtimes.split(","):
            binary = BINARIES.get(name, name)
            if not shutil.which(binary) and not os.access(binary, os.X_OK):
                print(f"{name}: not found, skipped", file=sys.stderr)
                continue
            root = os.path.join(work, name, "root")
            bundle = os.path.join(work, name, "bundle")
            config = default_config(args=["sleep", "100000"], terminal=False)
            config["linux"]["cgroupsPath"] = f"/pyrunc-bench/exec-{name}-{os.getpid()}"
            if name == "crun":
                config["ociVersion"] = "1.0.2"  # crun 1.8 refuses 1.3.0 ("unknown version specified")
            make_bundle(bundle, config=config, rootfs_template=template)
            cid = f"bench-exec-{os.getpid()}"
            # stderr to a file: the detached container inherits it, a pipe would never reach EOF
            with tempfile.TemporaryFile() as err:
                cp = subprocess.run([binary, "--root", root, "run", "-d", "-b", bundle, cid],
                                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
                err.seek(0)
                message = err.read().decode(errors="replace").strip()
            if cp.returncode != 0:
                print(f"{name}: run failed, skipped: {message}", file=sys.stderr)
                continue
            runtimes[name] = (binary, root, cid)
            false = subprocess.run([binary, "--root", root, "exec", cid, "false"], stdin=subprocess.DEVNULL,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
            if false != 1:
                print(f"{name}: exec false returned {false}, not 1: dropped", file=sys.stderr)
                del runtimes[name]
        times = {name: [] for name in runtimes}
        order = list(runtimes)
        for i in range(opts.iterations):
            for name in order[i % len(order):] + order[:i % len(order)]:
                binary, root, cid = runtimes[name]
                t0 = time.perf_counter()
                code = subprocess.run([binary, "--root", root, "exec", cid, "true"], stdin=subprocess.DEVNULL,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
                elapsed = time.perf_counter() - t0
                if code != 0:
                    raise SystemExit(f"{name}: exec true exited {code}")
                times[name].append(elapsed)
        print(f"exec <id> true, {opts.iterations} iterations (ms)")
        print(f"{'runtime':<8} {'median':>8} {'p90':>8}")
        medians = {}
        for name, values in times.items():
            values.sort()
            medians[name] = statistics.median(values) * 1000
            p90 = values[min(len(values) - 1, int(len(values) * 0.9))] * 1000
            print(f"{name:<8} {medians[name]:8.1f} {p90:8.1f}")
        if "pyrunc" in medians:
            for other in medians:
                if other != "pyrunc":
                    print(f"ratio pyrunc/{other}: {medians['pyrunc'] / medians[other]:.2f}")
    finally:
        for name, (binary, root, cid) in runtimes.items():
            subprocess.run([binary, "--root", root, "delete", "-f", cid], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
        for mp in ("/sys/fs/cgroup/" + d for d in os.listdir("/sys/fs/cgroup")):
            path = os.path.join(mp, "pyrunc-bench")
            for sub in (os.listdir(path) if os.path.isdir(path) else ()):
                if sub.startswith("exec-"):
                    try:
                        os.rmdir(os.path.join(path, sub))
                    except OSError:
                        pass
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
