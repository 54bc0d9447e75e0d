"""pyctr's containers side by side with podman (conmon, the same runtime: pyrunc) and docker
(a private dockerd with pyrunc added as a runtime), interleaved: `run --rm IMAGE true`,
`run -d` + `stop` + `rm`, `ps -a` with N containers, and the idle memory (private and PSS, from
smaps_rollup) of the per-container monitor processes (pyrunc-shim, conmon, containerd-shim).

    .venv/bin/python3 bench/pyctr_containers.py [--iterations 5] [--ps-count 100] [--idle 20]

Everything lives under temporary directories removed at the end."""
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

from bench.managers import IMAGE, ManagerFailed, _run, _umount_under, build_image  # noqa: E402

PYRUNC = os.path.join(REPO, ".venv", "bin", "pyrunc")
PYCTR = os.path.join(REPO, ".venv", "bin", "pyctr")


def _timed(argv):
    t = time.perf_counter()
    _run(argv)
    return (time.perf_counter() - t) * 1000


def _smaps(pid):
    priv = pss = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("Private_Clean", "Private_Dirty"):
                    priv += int(v.split()[0])
                elif k == "Pss":
                    pss = int(v.split()[0])
    except OSError:
        pass
    return priv, pss


def _pids_with(words):
    out = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    cmd = f.read()
            except OSError:
                continue
            if all(w.encode() in cmd for w in words):
                out.append(int(pid))
    return out


class Tool:
    def __init__(self, name, base_argv, run_flags, monitor_words):
        self.name, self.base, self.run_flags, self.monitor_words = name, base_argv, run_flags, monitor_words

    def run_rm(self):
        return _timed(self.base + ["run", "--rm", *self.run_flags, IMAGE, "true"])

    def run_stop_rm(self):
        t = time.perf_counter()
        cid = _run(self.base + ["run", "-d", *self.run_flags, IMAGE, "sleep", "600"]).strip()
        _run(self.base + ["stop", "-t", "0", cid])
        _run(self.base + ["rm", cid])
        return (time.perf_counter() - t) * 1000

    def ps(self):
        return _timed(self.base + ["ps", "-a"])

    def create(self, n):
        for _ in range(n):
            _run(self.base + ["create", *self.run_flags, IMAGE, "true"])

    def idle(self, n):
        for _ in range(n):
            _run(self.base + ["run", "-d", *self.run_flags, IMAGE, "sleep", "600"])
        time.sleep(2)
        pids = _pids_with(self.monitor_words)
        mem = [_smaps(p) for p in pids]
        return len(pids), sum(m[0] for m in mem) / 1024 / max(len(pids), 1), sum(m[1] for m in mem) / 1024 / max(len(pids), 1)

    def clean(self):
        ids = subprocess.run(self.base + ["ps", "-aq"], capture_output=True, text=True).stdout.split()
        if ids:
            subprocess.run(self.base + ["rm", "-f", *ids], capture_output=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--iterations", type=int, default=5)
    ap.add_argument("--ps-count", type=int, default=100)
    ap.add_argument("--idle", type=int, default=20)
    o = ap.parse_args()
    work = tempfile.mkdtemp(prefix="pyctr-bench-")
    cleanups = []
    try:
        from integration.helpers.bundle import make_rootfs
        archive = build_image(REPO, make_rootfs(os.path.join(work, "rootfs")), work)
        pyctr = Tool("pyctr", [PYCTR, "--root", f"{work}/pyctr", "--runroot", f"{work}/pyctr-run"],
                     ["--network", "none"],   # as podman's and docker's here
                     [f"{work}/pyctr".replace("//", "/"), "pyrunc-shim"])
        _run(pyctr.base + ["load", "-i", archive])
        cleanups.append(pyctr.clean)
        pod = tempfile.mkdtemp(prefix="pyctr-bpod-")
        podman = Tool("podman", ["podman", "--root", pod + "/root", "--runroot", pod + "/rr", "--tmpdir",
                                 pod + "/tmp", "--cgroup-manager", "cgroupfs", "--events-backend", "file",
                                 "--storage-driver", "overlay", "--runtime", PYRUNC],
                      ["--network", "none", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096"],
                      ["conmon", pod])
        _run(podman.base + ["load", "-i", archive])
        cleanups.append(lambda: (podman.clean(), _umount_under(pod), shutil.rmtree(pod, ignore_errors=True)))
        from integration.peers.test_docker import Dockerd
        dbase = tempfile.mkdtemp(prefix="pyctr-bdkr-")
        d = Dockerd(dbase)
        cleanups.append(lambda: (d.stop(), shutil.rmtree(dbase, ignore_errors=True)))
        d("load", "-i", archive)
        docker = Tool("docker", [d.client, "-H", f"unix://{d.sock}"], ["--network", "none", "--runtime", "pyrunc"],
                      ["containerd-shim", dbase])
        tools = [pyctr, podman, docker]
        res = {t.name: {"run --rm": [], "run -d+stop+rm": [], "ps -a": []} for t in tools}
        for _ in range(o.iterations):  # interleaved: the machine's noise hits every tool alike
            for t in tools:
                res[t.name]["run --rm"].append(t.run_rm())
            for t in tools:
                res[t.name]["run -d+stop+rm"].append(t.run_stop_rm())
        for t in tools:
            t.create(o.ps_count)
        for _ in range(o.iterations):
            for t in tools:
                res[t.name]["ps -a"].append(t.ps())
        for t in tools:
            t.clean()
        idle = {}
        for t in tools:
            idle[t.name] = t.idle(o.idle)
            t.clean()
        print(f"median ms over {o.iterations} interleaved iterations; ps -a with {o.ps_count} containers")
        print(f"{'':18}" + "".join(f"{t.name:>10}" for t in tools) + f"{'pyctr/podman':>14}{'pyctr/docker':>14}")
        for row in ("run --rm", "run -d+stop+rm", "ps -a"):
            m = {t.name: statistics.median(res[t.name][row]) for t in tools}
            print(f"{row:18}" + "".join(f"{m[t.name]:10.1f}" for t in tools) +
                  f"{m['pyctr'] / m['podman']:13.2f}x{m['pyctr'] / m['docker']:13.2f}x")
        print(f"idle monitors, {o.idle} containers: processes / private MB each / PSS MB each")
        for t in tools:
            n, priv, pss = idle[t.name]
            print(f"  {t.name:8} {n:4d} {priv:8.2f} {pss:8.2f}")
    except ManagerFailed as e:
        print(f"bench failed: {e}", file=sys.stderr)
        return 1
    finally:
        for c in reversed(cleanups):
            c()
        _umount_under(work)
        shutil.rmtree(work, ignore_errors=True)
        _remove_empty_cgroup_parents()
    return 0


def _remove_empty_cgroup_parents():
    """The parents pyrunc (pyctr's /pyctr/<id>) and podman (libpod_parent) made: rmdir fails,
    harmlessly, while anyone still has a container under them."""
    for ctrl in os.listdir("/sys/fs/cgroup"):
        for name in ("pyctr", "libpod_parent"):
            try:
                os.rmdir(f"/sys/fs/cgroup/{ctrl}/{name}")
            except OSError:
                pass


if __name__ == "__main__":
    sys.exit(main())
