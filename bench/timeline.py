#!/usr/bin/env python3
"""Where one pyrunc command spends its time: a timeline of marks, per process, in milliseconds.

Usage (as root, from the repository):
  .venv/bin/python3 bench/timeline.py [--runs 5] [--wrap MODULE:ATTR ...] -- <pyrunc arguments>
  e.g. bench/timeline.py -- --root /tmp/r run -b /tmp/bundle ctr1

Runs the installed pyrunc (the package .venv/bin/pyrunc imports) in a `python -S` that wraps the
given functions (default: the steps of create/run/exec) with marks written to stderr as
"pid ms +delta label", ms counted from the harness's first line. The interpreter's own start (before
that first line) is measured apart, as `python -S -c pass`. The last run is printed (the others
warm the caches); the container ids get a suffix per run, so `run`/`create` can be repeated.
Wrapped functions must be reached through a module attribute at call time (most steps import lazily).
--faults adds each process's minor page faults (from /proc/self/stat) at every mark: a forked
child's count starts at 0, so its numbers are its own copy-on-write and new pages.
"""
import argparse
import os
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_WRAP = [
    "pyrunc.lifecycle.run:create", "pyrunc.lifecycle.run:start", "pyrunc.lifecycle.run:destroy",
    "pyrunc.spec.load:load_config", "pyrunc.cgroups.manager:open_manager", "pyrunc.cgroups.apply:apply",
    "pyrunc.process.spawn:spawn", "pyrunc.process.init:preload", "pyrunc.process.init:setup",
    "pyrunc.cgroups.selfjoin:SelfJoin.fork", "pyrunc.cgroups.selfjoin:SelfJoin.clone",
    "pyrunc.process.spawn:_direct_init", "pyrunc.cgroups.selfjoin:SelfJoin.join_child",
    "pyrunc.linux.namespaces:NamespacePlan.enter", "pyrunc.linux.rootfs:prepare",
    "pyrunc.process.become:become", "pyrunc.lifecycle.foreground:wait_foreground",
    "pyrunc.lifecycle.exec:load", "pyrunc.lifecycle.exec:build_process",
    "pyrunc.process.setns_init:preload", "pyrunc.process.setns_init:main", "pyrunc.lifecycle.exec:_wait_started",
]

HARNESS = r'''
import os, sys, time
T0 = time.perf_counter_ns()
sys.path[:0] = SITE
last = {}
lastflt = {}
def mark(label):
    now = time.perf_counter_ns()
    pid = os.getpid()
    delta = (now - last.get(pid, T0)) / 1e6
    last[pid] = now
    faults = ""
    if FAULTS:
        with open("/proc/self/stat", "rb") as f:
            flt = int(f.read().rsplit(b")", 1)[1].split()[7])  # minflt, field 10
        faults = f"{flt:6d} +{flt - lastflt.get(pid, 0):5d} "
        lastflt[pid] = flt
    os.write(2, f"{pid:>7} {(now - T0) / 1e6:7.2f} +{delta:5.2f} {faults}{label}\n".encode())
mark("harness start (interpreter already up)")
try:
    from pyrunc import importer  # as .venv/bin/pyrunc starts (scripts/fast-entry)
except ImportError:
    pass
else:
    importer.install()
from pyrunc.cli import main
mark("import pyrunc.cli")
import importlib
for spec in WRAP:
    module, _, attr = spec.partition(":")
    owner = importlib.import_module(module)
    *path, name = attr.split(".")
    for part in path:
        owner = getattr(owner, part)
    def wrapped(*a, __fn=getattr(owner, name), __spec=spec, **k):
        mark(">" + __spec)
        try:
            return __fn(*a, **k)
        finally:
            mark("<" + __spec)
    setattr(owner, name, wrapped)
mark("wrapping done (imports of the wrapped modules included)")
code = main(ARGV)
mark("end")
sys.stdout.flush()
os._exit(code)
'''


def site_dir():
    pyrunc = os.path.join(REPO, ".venv", "bin", "pyrunc")
    with open(pyrunc) as f:
        for line in f:
            if line.startswith("sys.path.extend("):
                return eval(line[len("sys.path.extend("):].rstrip().rstrip(")"))  # noqa: S307 - our own file
    raise SystemExit(f"{pyrunc} is not scripts/fast-entry's script: run scripts/setup")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--wrap", nargs="*", default=DEFAULT_WRAP)
    ap.add_argument("--faults", action="store_true",
                    help="also the process's minor page faults at each mark (total, +since its last mark)")
    ap.add_argument("args", nargs=argparse.REMAINDER)
    opts = ap.parse_args()
    args = opts.args[1:] if opts.args[:1] == ["--"] else opts.args
    if not args:
        ap.error("give the pyrunc arguments after --")
    python = "/usr/bin/python3"
    samples = []
    for _ in range(9):
        t = time.perf_counter()
        subprocess.run([python, "-S", "-c", "pass"], check=True)
        samples.append((time.perf_counter() - t) * 1000)
    samples.sort()
    print(f"interpreter start (python -S -c pass, median of 9): {samples[4]:.2f} ms")
    out = ""
    for run in range(opts.runs):
        argv = list(args)
        if any(verb in argv for verb in ("run", "create")):
            argv[-1] = f"{argv[-1]}-{os.getpid()}-{run}"
        script = HARNESS.replace("SITE", repr(site_dir())).replace("WRAP", repr(opts.wrap)) \
                        .replace("ARGV", repr(argv)) \
                        .replace("FAULTS", repr(opts.faults))
        cp = subprocess.run([python, "-S", "-c", script], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
        out = cp.stderr
        if cp.returncode != 0:
            print(out)
            return cp.returncode
    print("    pid      ms  delta " + (" minflt  delta " if opts.faults else "") + " mark (last run)")
    print(out, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
