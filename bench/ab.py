#!/usr/bin/env python3
"""Interleaved A/B of two pyrunc versions: wall time, CPU and page faults of each runtime command.

Usage (as root, from the repository):
  .venv/bin/python3 bench/ab.py --a main [--b WORKTREE] [--runs 30] [--mode run|lifecycle]

A and B are git refs of this repository, or "WORKTREE" (the files as they are now). Each is
installed (pip --target, no dependencies) into a temporary directory and started the way
scripts/fast-entry starts .venv/bin/pyrunc (`python -S`, the venv's packages on sys.path after the
standard library), so the two differ only in pyrunc's own code. Bytecode is cached under the
temporary directory (no PYTHONDONTWRITEBYTECODE), as an installed pyrunc runs; --warmup runs fill it.

Modes (each iteration runs A then B, or B then A, alternating):
  run        `run -b BUNDLE ID` of /bin/true (runc's default config, terminal false)
  lifecycle  create (process `sleep 1000`), state, start, kill KILL, delete: one container each

Per command and side it prints the median wall time (ms), the median user and system CPU (ms) and
minor page faults of the runtime and every process it reaped (wait4's rusage), and B/A of the
wall medians. We are a child subreaper, so a created container's init is ours to reap.
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
sys.path.insert(0, os.path.join(REPO, "integration"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # lifecycle

from lifecycle import reap_children  # noqa: E402

PR_SET_CHILD_SUBREAPER = 36


def install(ref, dest, work):
    """pip-install pyrunc at ref (or the working tree) into dest, compiled as pip compiles it into
    .venv; return the path of an entry script like scripts/fast-entry's."""
    src = REPO
    if ref != "WORKTREE":
        src = os.path.join(work, "src-" + os.path.basename(dest))
        os.makedirs(src)
        archive = subprocess.run(["git", "-C", REPO, "archive", ref], check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", src], input=archive, check=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-deps",
                    "--target", dest, src], check=True)
    site = [p for p in sys.path if p.endswith("site-packages")]
    entry = dest + ".entry"
    # As that version's scripts/fast-entry writes it: with pyrunc/importer.py when it has one.
    own_finder = ("from pyrunc import importer\nimporter.install()\n"
                  if os.path.exists(os.path.join(dest, "pyrunc", "importer.py")) else "")
    with open(entry, "w") as f:
        f.write(f"#!{sys.executable} -S\nimport sys\nsys.path.extend({[dest] + site!r})\n"
                + own_finder +
                "from pyrunc.cli import entry\nsys.exit(entry())\n")
    os.chmod(entry, 0o755)
    return entry


def timed(argv, env):
    """(wall ms, user ms, sys ms, minor faults, exit status) of one command, stdio on /dev/null."""
    actions = [(os.POSIX_SPAWN_OPEN, fd, "/dev/null", os.O_RDWR, 0) for fd in (0, 1)]
    actions.append((os.POSIX_SPAWN_OPEN, 2, env["AB_STDERR"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
    t = time.perf_counter()
    pid = os.posix_spawn(argv[0], argv, env, file_actions=actions)
    _, status, ru = os.wait4(pid, 0)
    wall = (time.perf_counter() - t) * 1000
    return wall, ru.ru_utime * 1000, ru.ru_stime * 1000, ru.ru_minflt, os.waitstatus_to_exitcode(status)


def iteration(mode, side, entry, root, bundles, n, env, samples, cgroup_parent):
    cid = f"ab-{side}-{n}"
    base = [entry, "--root", root]

    def do(label, args, ok=(0,)):
        result = timed(base + args, env)
        if result[4] not in ok:
            with open(env["AB_STDERR"]) as f:
                raise SystemExit(f"{side}: {' '.join(args)} exited {result[4]}\n{f.read()[-2000:]}")
        samples.setdefault((label, side), []).append(result)

    set_cgroup(bundles[mode], f"{cgroup_parent}/{cid}")
    if mode == "run":
        do("run", ["run", "-b", bundles[mode], cid])
    else:
        do("create", ["create", "-b", bundles[mode], cid])
        do("state", ["state", cid])
        do("start", ["start", cid])
        do("kill", ["kill", cid, "KILL"])
        for _ in range(2000):  # init is ours (subreaper): reap it, then delete sees it stopped
            reap_children()
            if not os.path.exists(f"/proc/{state_pid(root, cid)}"):
                break
            time.sleep(0.0005)
        do("delete", ["delete", cid])
    reap_children()


def state_pid(root, cid):
    import json
    with open(os.path.join(root, cid, "state.json")) as f:
        return json.load(f)["pid"]


def set_cgroup(bundle, path):
    import json
    from helpers.bundle import write_config
    with open(os.path.join(bundle, "config.json")) as f:
        config = json.load(f)
    config["linux"]["cgroupsPath"] = path
    write_config(bundle, config)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--a", default="HEAD")
    ap.add_argument("--b", default="WORKTREE")
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--mode", choices=("run", "lifecycle"), default="run")
    opts = ap.parse_args()
    import ctypes
    ctypes.CDLL(None).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    from helpers.bundle import make_bundle, make_rootfs
    work = tempfile.mkdtemp(prefix="pyrunc-ab-")
    cgroup_parent = f"/pyrunc-ab-{os.getpid()}"
    try:
        entries = {"A": install(opts.a, os.path.join(work, "A"), work),
                   "B": install(opts.b, os.path.join(work, "B"), work)}
        template = make_rootfs(os.path.join(work, "rootfs"))
        bundles = {"run": os.path.join(work, "bundle-run"), "lifecycle": os.path.join(work, "bundle-lc")}
        make_bundle(bundles["run"], ["true"], rootfs_template=template)
        make_bundle(bundles["lifecycle"], ["sleep", "1000"], rootfs_template=template)
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = os.path.join(work, "pycache")
        env["AB_STDERR"] = os.path.join(work, "stderr")
        env["PYRUNC_CACHE_DIR"] = os.path.join(work, "spec-cache")  # validators of these installs die with them
        root = os.path.join(work, "root")
        samples = {}
        for n in range(opts.warmup + opts.runs):
            order = ("A", "B") if n % 2 == 0 else ("B", "A")
            for side in order:
                iteration(opts.mode, side, entries[side], root, bundles, n, env, samples, cgroup_parent)
            if n == opts.warmup - 1:
                samples.clear()
        print(f"A = {opts.a}, B = {opts.b}, {opts.runs} runs interleaved, medians "
              "(wall ms; user/sys CPU ms and minor faults of the runtime and what it reaped)")
        print(f"{'command':<8} {'A wall':>7} {'B wall':>7} {'B/A':>6}   {'A usr/sys':>11} {'B usr/sys':>11}"
              f"   {'A flt':>6} {'B flt':>6}")
        labels = dict.fromkeys(label for label, _ in samples)
        for label in labels:
            med = {side: [statistics.median(s[i] for s in samples[(label, side)]) for i in range(4)]
                   for side in "AB"}
            a, b = med["A"], med["B"]
            print(f"{label:<8} {a[0]:7.2f} {b[0]:7.2f} {b[0] / a[0]:6.3f}   {a[1]:5.1f}/{a[2]:5.1f} "
                  f"{b[1]:5.1f}/{b[2]:5.1f}   {a[3]:6.0f} {b[3]:6.0f}")
    finally:
        import glob
        for cgdir in glob.glob(f"/sys/fs/cgroup/*{cgroup_parent}"):
            try:
                os.rmdir(cgdir)  # pyrunc removes a parent it made when it can; this is what is left
            except OSError:
                pass
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
