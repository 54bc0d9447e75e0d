"""`docker run --rm IMAGE true` through pyctr's API socket (`pyctr system service`) against a
private dockerd, interleaved; the same docker CLI for both. Goal: pyctr at most 0.5x dockerd.

    .venv/bin/python3 bench/api.py [--iterations 10]

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

from integration.manager.containers import IMAGE, build_image_archive  # noqa: E402
from integration.peers.test_docker import Dockerd  # noqa: E402

PYCTR = os.path.join(REPO, ".venv", "bin", "pyctr")


def _timed(sock, env):
    t = time.perf_counter()
    cp = subprocess.run(["docker", "-H", f"unix://{sock}", "run", "--rm", "--network", "none", IMAGE, "true"],
                        env=env, capture_output=True, text=True, timeout=120)
    if cp.returncode != 0:
        raise SystemExit(f"docker run via {sock} failed: {cp.stderr.strip()}")
    return (time.perf_counter() - t) * 1000


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--iterations", type=int, default=10)
    args = ap.parse_args()
    base = tempfile.mkdtemp(prefix="pyctr-bench-api-")
    d = proc = None
    try:
        archive = build_image_archive(base)
        root, run = os.path.join(base, "pyctr"), os.path.join(base, "pyctr-run")
        subprocess.run([PYCTR, "--root", root, "--runroot", run, "load", "-i", archive], check=True,
                       capture_output=True)
        sock = os.path.join(base, "pyctr.sock")
        proc = subprocess.Popen([PYCTR, "--root", root, "--runroot", run, "system", "service", "--time", "0",
                                 f"unix://{sock}"])
        os.makedirs(os.path.join(base, "docker"))
        d = Dockerd(os.path.join(base, "docker"))
        d("load", "-i", archive)
        while not os.path.exists(sock):
            time.sleep(0.05)
        env = dict(os.environ, DOCKER_CONFIG=os.path.join(base, "client"))
        times = {"pyctr": [], "dockerd": []}
        for i in range(args.iterations + 1):
            for name, s in (("pyctr", sock), ("dockerd", d.sock)):
                t = _timed(s, env)
                if i:  # the first round warms both up
                    times[name].append(t)
        med = {k: statistics.median(v) for k, v in times.items()}
        for k, v in times.items():
            print(f"{k:8} median {med[k]:7.1f} ms  min {min(v):7.1f}  max {max(v):7.1f}  (n={len(v)})")
        print(f"pyctr/dockerd: {med['pyctr'] / med['dockerd']:.2f}x")
    finally:
        if proc:
            proc.terminate()
            proc.wait(timeout=20)
        if d:
            host_netns = os.path.join(d.base, "x", "netns", "default")
            if os.path.exists(host_netns):
                subprocess.run(["umount", host_netns])
            d.stop()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
