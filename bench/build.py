"""Build time of a multi-stage Dockerfile: `pyctr build` vs `docker build` (Debian's docker.io
20.10, classic builder, a private dockerd) vs `buildah bud` (Debian's 1.28, private --root and
--runroot, its default OCI isolation with runc (`--runtime runc`: its own pick, crun, refuses this
hybrid-cgroup host), `--layers` so it caches). Prints medians and
ratios; never asserts.

    .venv/bin/python3 bench/build.py [--rounds 7] [--json FILE]

The same busybox base is in all three (`pyctr save` into `docker load` and buildah's
`docker-archive:` pull). Two measurements, each round running the three builders in rotating
order (the first round is a warmup and is discarded):
  cold     --no-cache: every step runs (RUN containers, COPY, commits)
  cached   the same build again, nothing changed: every step a cache hit
RUN steps get no network in all three (--network none).
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.join(REPO, "runtime"), os.path.join(REPO, "manager"), REPO]
PYCTR = os.path.join(REPO, ".venv", "bin", "pyctr")
BASE = "localhost/bench/busybox:latest"

DOCKERFILE = f"""\
FROM {BASE} AS build
ARG VERSION=1
WORKDIR /src
COPY src/ ./
RUN mkdir -p /out && for f in *.txt; do tr a-z A-Z < "$f" > "/out/$f"; done && echo "$VERSION" > /out/version
RUN cd /out && cat *.txt | wc -c > total

FROM {BASE}
LABEL org.example.bench=build
ENV APP=/app
COPY --from=build /out /app
COPY config.ini /etc/app.ini
RUN chmod -R go-w /app && adduser -D -H app 2>/dev/null || true
USER app
EXPOSE 8080
WORKDIR /app
CMD ["cat", "/app/total"]
"""


def run(argv, env=None):
    cp = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                        env=env, text=True)
    if cp.returncode != 0:
        raise SystemExit(f"failed: {' '.join(argv)}\n{cp.stdout[-2000:]}\n{cp.stderr[-2000:]}")
    return cp


def make_context(work):
    ctx = os.path.join(work, "ctx")
    os.makedirs(os.path.join(ctx, "src"))
    for i in range(100):
        with open(os.path.join(ctx, "src", f"f{i:03d}.txt"), "w") as f:
            f.write(("lorem ipsum dolor sit amet %d\n" % i) * 200)
    with open(os.path.join(ctx, "config.ini"), "w") as f:
        f.write("[app]\nlevel=info\n")
    with open(os.path.join(ctx, "Dockerfile"), "w") as f:
        f.write(DOCKERFILE)
    return ctx


class Builders:
    def __init__(self, work, ctx):
        from integration.helpers.bundle import make_rootfs, write_rootfs_tar
        from integration.peers.test_docker import Dockerd
        self.work, self.ctx = work, ctx
        rootfs = make_rootfs(os.path.join(work, "rootfs"))
        tar = write_rootfs_tar(rootfs, os.path.join(work, "rootfs.tar"))
        self.pyctr_root = os.path.join(work, "pyctr")
        run([PYCTR, "--root", self.pyctr_root, "import", "-c", 'CMD ["sh"]', tar, BASE])
        archive = os.path.join(work, "base.tar")
        run([PYCTR, "--root", self.pyctr_root, "save", "-o", archive, BASE])
        self.buildah = ["buildah", "--root", os.path.join(work, "buildah", "root"),
                        "--runroot", os.path.join(work, "buildah", "run"), "--storage-driver", "overlay"]
        run(self.buildah + ["pull", "-q", f"docker-archive:{archive}"])
        os.makedirs(os.path.join(work, "docker"))
        self.dockerd = Dockerd(os.path.join(work, "docker"))
        self.dockerd("load", "-i", archive)
        self.docker_env = dict(os.environ, DOCKER_BUILDKIT="0",
                               DOCKER_CONFIG=os.path.join(work, "docker", "client"))

    def argv(self, name, cold):
        if name == "pyctr":
            return [PYCTR, "--root", self.pyctr_root, "build", "-q", "-t", "bench:pyctr"] + \
                (["--no-cache"] if cold else []) + [self.ctx]
        if name == "docker":
            return [self.dockerd.client, "-H", f"unix://{self.dockerd.sock}", "build", "-q", "--network", "none",
                    "-t", "bench:docker"] + (["--no-cache"] if cold else []) + [self.ctx]
        return self.buildah + ["bud", "-q", "--layers", "--runtime", "/usr/sbin/runc", "--network", "none", "-t", "bench:buildah"] + \
            (["--no-cache"] if cold else []) + [self.ctx]

    def time(self, name, cold):
        env = self.docker_env if name == "docker" else None
        start = time.monotonic()
        run(self.argv(name, cold), env=env)
        return time.monotonic() - start

    def close(self):
        self.dockerd.stop()
        subprocess.run(self.buildah + ["rm", "--all"], capture_output=True)
        subprocess.run(self.buildah + ["rmi", "--all", "--force"], capture_output=True)
        subprocess.run(["umount", "-R", "-l", os.path.join(self.work, "buildah")], capture_output=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--json")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="bench-build-")
    names = ["pyctr", "docker", "buildah"]
    results = {"cold": {n: [] for n in names}, "cached": {n: [] for n in names}}
    b = None
    try:
        b = Builders(work, make_context(work))
        for r in range(args.rounds + 1):
            order = names[r % 3:] + names[:r % 3]
            for kind in ("cold", "cached"):
                for n in order:
                    if kind == "cached":
                        b.time(n, False)  # make sure the cache holds this build (untimed)
                    t = b.time(n, kind == "cold")
                    if r:
                        results[kind][n].append(t)
    finally:
        if b:
            b.close()
        subprocess.run(["umount", "-R", "-l", work], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)
    out = {}
    for kind in ("cold", "cached"):
        med = {n: statistics.median(v) for n, v in results[kind].items()}
        out[kind] = med
        best_peer = min(med["docker"], med["buildah"])
        print(f"{kind:7s} pyctr {med['pyctr'] * 1000:8.0f} ms   docker {med['docker'] * 1000:8.0f} ms   "
              f"buildah {med['buildah'] * 1000:8.0f} ms   pyctr/faster peer {med['pyctr'] / best_peer:.2f}x")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rounds": args.rounds, "median_s": out, "samples_s": results}, f, indent=1)


if __name__ == "__main__":
    main()
