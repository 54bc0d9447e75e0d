"""podman's monitor: conmon against pyrunc-shim (`podman --conmon`), runtime runc. Two numbers:

- idle memory: N containers (`sleep`) started under each monitor, interleaved (conmon, shim,
  conmon, ...); for every monitor process /proc/PID/smaps_rollup: private (Private_Clean +
  Private_Dirty) and Pss, averaged per container. With pyrunc-shim the zygote that forked the
  monitors is counted too (its own private and Pss, spread over the N containers): it is memory
  the containers cost while it lives.
- `podman run --rm IMAGE true` latency with each monitor, interleaved rounds.

    .venv/bin/python3 bench/podman_monitor.py [--containers 20] [--rounds 10]

Private storage under a temporary directory, removed at the end (containers, images, cgroups).
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from bench.lifecycle import cgroup_bases, remove_cgroup_tree  # noqa: E402
from bench.managers import CGROUP_PARENT, IMAGE, Podman, _run, build_image  # noqa: E402
from integration.helpers.bundle import make_rootfs  # noqa: E402

SHIM = os.path.join(REPO, ".venv", "bin", "pyrunc-shim")
# name -> --conmon: pyrunc-shim with its zygote (the default) and without (each monitor an
# interpreter of its own, through a wrapper: podman passes conmon only an environment of its making)
MONITORS = {"conmon": "/usr/bin/conmon", "pyrunc-shim": SHIM, "shim-no-zyg": None}


def smaps(pid):
    out = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            k, _, v = line.partition(":")
            if v.strip().endswith("kB"):
                out[k] = int(v.split()[0])
    return {"private": out["Private_Clean"] + out["Private_Dirty"], "pss": out["Pss"], "rss": out["Rss"]}


def zygotes():
    """The processes of this checkout's zygote.py: the zygotes and the monitors they forked."""
    mine = os.path.join(REPO, ".venv")
    pids = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/cmdline", "rb") as f:
                    argv = f.read().split(b"\0")
            except OSError:
                continue
            if len(argv) > 4 and argv[-3].endswith(b"pyrunc_shim/zygote.py") and argv[0].startswith(mine.encode()):
                pids.append(int(d))
    return pids


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--containers", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--runtime", default="/usr/sbin/runc")
    a = ap.parse_args(argv)
    workdir = tempfile.mkdtemp(prefix="pyrunc-bmon-")
    pod = None
    try:
        archive = build_image(REPO, make_rootfs(os.path.join(workdir, "rootfs")), workdir)
        pod = Podman(archive)
        base = pod.global_args

        no_zygote = os.path.join(workdir, "pyrunc-shim-no-zygote")
        with open(no_zygote, "w") as f:
            f.write(f"#!/bin/sh\nPYRUNC_SHIM_ZYGOTE=0 exec {SHIM} \"$@\"\n")
        os.chmod(no_zygote, 0o755)
        paths = dict(MONITORS, **{"shim-no-zyg": no_zygote})

        def podman(monitor, *args):
            return _run(base[:1] + ["--conmon", paths[monitor]] + base[1:] + ["--runtime", a.runtime, *args])

        run_true = Podman.argv(pod, type("R", (), {"binary": a.runtime}))
        run_args = run_true[run_true.index("run"):]  # run --rm ... IMAGE true
        flags = run_args[2:-2]  # --network none --cgroup-parent ... --ulimit ...

        # idle memory (the first pyrunc-shim launcher starts the zygote: started here beforehand)
        podman("pyrunc-shim", *run_args)
        time.sleep(1)
        names = {m: [] for m in MONITORS}
        for i in range(a.containers):
            for m in MONITORS:
                name = f"idle-{m}-{i}"
                podman(m, "run", "-d", "--name", name, *flags, IMAGE, "sleep", "100000")
                names[m].append(name)
        time.sleep(2)  # past any start-up activity
        mem = {}
        for m, ns in names.items():
            pids = [int(podman(m, "inspect", "--format", "{{.State.ConmonPid}}", n).strip()) for n in ns]
            for pid in pids:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    cmd = f.read()
                want = {"conmon": b"/usr/bin/conmon\0", "pyrunc-shim": b"pyrunc_shim/zygote.py\0",
                        "shim-no-zyg": b"bin/pyrunc-shim\0"}[m]
                assert want in cmd, cmd  # podman used the monitor asked for (and the zygote served)
            rows = [smaps(p) for p in pids]
            extra = [smaps(p) for p in zygotes() if p not in pids] if m == "pyrunc-shim" else []
            n = len(rows)
            mem[m] = {k: (sum(r[k] for r in rows) + sum(r[k] for r in extra)) / n / 1024
                      for k in ("private", "pss", "rss")}
            mem[m]["monitor_private"] = statistics.mean(r["private"] for r in rows) / 1024
            mem[m]["zygotes"] = len(extra)
        for m in MONITORS:
            podman(m, "rm", "-f", "-t", "0", *names[m])
        print(f"{a.containers} idle containers per monitor, runtime {a.runtime} (MB per container)")
        print(f"{'monitor':<12} {'private':>8} {'PSS':>8} {'RSS':>8}  {'monitor-only private':>20}")
        for m, r in mem.items():
            note = f"  (+{r['zygotes']} zygote counted)" if r["zygotes"] else ""
            print(f"{m:<12} {r['private']:8.2f} {r['pss']:8.2f} {r['rss']:8.2f}  {r['monitor_private']:20.2f}{note}")

        # run --rm latency
        times = {m: [] for m in MONITORS}
        for m in MONITORS:  # one warm-up each
            podman(m, *run_args)
        for _ in range(a.rounds):
            for m in MONITORS:
                t = time.perf_counter()
                podman(m, *run_args)
                times[m].append(time.perf_counter() - t)

        print(f"\n`podman run --rm IMAGE true`, {a.rounds} interleaved rounds (ms)")
        for m, ts in times.items():
            ts = sorted(t * 1000 for t in ts)
            print(f"{m:<12} median {statistics.median(ts):7.1f}  min {ts[0]:7.1f}  max {ts[-1]:7.1f}")
    finally:
        if pod is not None:
            pod.close()
        subprocess.run(["rm", "-rf", workdir])
        for base in cgroup_bases():  # podman's --cgroup-parent tree (conmon's cgroup in it), empty by now
            remove_cgroup_tree(os.path.join(base, CGROUP_PARENT))


if __name__ == "__main__":
    main()
