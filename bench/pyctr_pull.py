"""Pull time from a local registry: pyctr vs skopeo (and umoci), on several images, in one run.
Prints medians and ratios; never asserts.

    .venv/bin/python3 bench/pyctr_pull.py [--images 3x1000,5x1000,3x8000] [--rounds 7] [--json FILE]

A docker-registry on 127.0.0.1 (the test suite's helper: temp config and storage) gets one image
per --images entry LAYERSxFILES, pushed by skopeo (which gzips the layers, as registries hold
them): a busybox layer and LAYERS-1 data layers of FILES files each (4 KiB, every tenth 64 KiB).
For each image and each comparison below, each round runs that comparison's rows once in rotating
order, each into a fresh store; clearing and `sync` are untimed; the first round is a warmup and is
discarded. The blob-copy rounds run first (see GROUPS). Two comparisons:

Full pull (a usable layer store at the end):
  pyctr pull             download, verify, apply every layer into overlay2 (extracting while it
                         downloads, two layers at a time)
  skopeo→c/storage       `skopeo copy docker://... containers-storage:[overlay@G+R]img`: what
                         `podman pull` does (download, verify, apply into containers/storage's
                         overlay driver with its metadata); a fresh graphroot and runroot each round,
                         removed untimed with `podman system reset -f`, then any mount left under
                         them is detached before the trees go (the driver bind-mounts its home)
  skopeo+umoci           `skopeo copy ... oci:DIR` then `umoci unpack` into a rootfs

Blob copy (fetch and verify only, nothing unpacked):
  pyctr pull --no-unpack blobs verified into the content store, config and tag recorded (as
                         `ctr pull --skip-unpack`); the layers are unpacked on first use
  skopeo copy            `skopeo copy docker://... oci:DIR`: blobs verified into an OCI layout
"""
import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.join(REPO, "runtime"), os.path.join(REPO, "manager"), REPO]


def make_archive(work, nlayers, nfiles):
    """A docker-archive with a busybox layer and data layers, written by hand (not by pyctr)."""
    import hashlib
    import io
    from integration.helpers.bundle import make_rootfs
    layers = []
    rootfs = make_rootfs(os.path.join(work, "rootfs"))
    trees = [rootfs]
    rnd = os.urandom(65536)
    for n in range(1, nlayers):
        d = os.path.join(work, f"data{n}")
        for i in range(nfiles):
            sub = os.path.join(d, f"data{n}", f"d{i % 20}")
            os.makedirs(sub, exist_ok=True)
            with open(os.path.join(sub, f"f{i}"), "wb") as f:
                f.write((rnd[(i * 7 + n) % 4096:] + rnd)[: 4096 if i % 10 else 65536])
        trees.append(d)
    for n, tree in enumerate(trees):
        path = os.path.join(work, f"layer{n}.tar")
        with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tf:
            for name in sorted(os.listdir(tree)):
                tf.add(os.path.join(tree, name), arcname=name)
        shutil.rmtree(tree)
        layers.append(path)
    diff_ids, total = [], 0
    for p in layers:
        data = open(p, "rb").read()
        total += len(data)
        diff_ids.append("sha256:" + hashlib.sha256(data).hexdigest())
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/bin/sh"]},
                         "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
    manifest = json.dumps([{"Config": "config.json", "RepoTags": ["bench:1"],
                            "Layers": [f"l{n}/layer.tar" for n in range(len(layers))]}]).encode()
    archive = os.path.join(work, "image.tar")
    with tarfile.open(archive, "w") as tf:
        for name, data in (("config.json", config), ("manifest.json", manifest)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        for n, p in enumerate(layers):
            tf.add(p, arcname=f"l{n}/layer.tar")
            os.unlink(p)
    return archive, total


def summary(samples):
    return {"n": len(samples), "median": statistics.median(samples), "min": min(samples), "max": max(samples),
            "samples": samples}


def _mounts_under(path):
    """Mount points at or below path, deepest first (from /proc/self/mountinfo)."""
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = line.split()[4].replace("\\040", " ")
            if mp == path or mp.startswith(path + "/"):
                out.append(mp)
    return sorted(out, key=len, reverse=True)


def reset_cstorage(graphroot, runroot, driver):
    """Remove a containers-storage store: podman's reset, then whatever mount it left, then the trees."""
    if os.path.isdir(graphroot):
        subprocess.run(["podman", "--root", graphroot, "--runroot", runroot, "--storage-driver", driver,
                        "system", "reset", "-f"], stdin=subprocess.DEVNULL, capture_output=True)
    for mp in _mounts_under(graphroot) + _mounts_under(runroot):
        subprocess.run(["umount", "-l", mp], capture_output=True)
    for d in (graphroot, runroot):
        if _mounts_under(d):
            raise SystemExit(f"cannot detach the mounts under {d}: not removing it")
        shutil.rmtree(d, ignore_errors=True)


# Each comparison's rows are interleaved with each other, the blob copies first: after a row that
# leaves a large tree to delete, file and block allocation on this shared disk stays slow for a
# while, and a rotation that always puts the same row after skopeo+umoci made it pay for that.
GROUPS = (("pyctr pull --no-unpack", "skopeo copy"), ("pyctr pull", "skopeo→c/storage", "skopeo+umoci"))
ROWS = GROUPS[1] + GROUPS[0]
RATIOS = (("pyctr pull", "skopeo→c/storage"), ("pyctr pull", "skopeo+umoci"),
          ("pyctr pull --no-unpack", "skopeo copy"))


def parse_images(text):
    out = []
    for item in text.split(","):
        layers, _, files = item.strip().partition("x")
        if not (layers.isdigit() and files.isdigit() and int(layers) >= 1):
            raise SystemExit(f"--images: {item!r} is not LAYERSxFILES")
        out.append((int(layers), int(files)))
    return out


def run(rounds, images, workdir=None, driver="overlay"):
    from integration.manager.registry import Registry
    for tool in ("skopeo", "docker-registry", "umoci", "podman"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is not installed")
    pyctr = os.path.join(REPO, ".venv", "bin", "pyctr")
    if not os.access(pyctr, os.X_OK):
        raise SystemExit(f"{pyctr} missing: run scripts/setup")
    work = tempfile.mkdtemp(prefix="pyctr-bench-pull-", dir=workdir)
    reg = None
    # runroot holds sockets and lock files: kept short (< 50 chars); graphroot on the same fs as work
    runroot = tempfile.mkdtemp(prefix="pyctr-bp-", dir="/run")
    graphroot = os.path.join(work, "cstorage")
    root = os.path.join(work, "pyctr-root")
    try:
        reg = Registry(os.path.join(work, "registry"))
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = os.path.join(work, "pycache")
        env["REGISTRY_AUTH_FILE"] = os.path.join(work, "auth.json")
        oci, bundle = os.path.join(work, "oci"), os.path.join(work, "bundle")
        results = []
        for nlayers, nfiles in images:
            src = os.path.join(work, "src")
            os.makedirs(src)
            archive, uncompressed = make_archive(src, nlayers, nfiles)
            image = f"{reg.host}/bench/img{nlayers}x{nfiles}:1"
            subprocess.run(["skopeo", "copy", "--quiet", "--dest-tls-verify=false", f"docker-archive:{archive}",
                            f"docker://{image}"], check=True, capture_output=True)
            raw = json.loads(subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{image}"],
                                            check=True, capture_output=True).stdout)
            compressed = sum(d["size"] for d in raw["layers"])
            skopeo = ["skopeo", "copy", "--quiet", "--src-tls-verify=false", f"docker://{image}", f"oci:{oci}:img"]
            cmds = {"pyctr pull": [[pyctr, "--root", root, "pull", "--insecure", "--quiet", image]],
                    "skopeo→c/storage": [["skopeo", "copy", "--quiet", "--src-tls-verify=false", f"docker://{image}",
                                          f"containers-storage:[{driver}@{graphroot}+{runroot}]img"]],
                    "skopeo+umoci": [skopeo, ["umoci", "unpack", "--image", f"{oci}:img", bundle]],
                    "pyctr pull --no-unpack": [[pyctr, "--root", root, "pull", "--insecure", "--quiet", "--no-unpack",
                                                image]],
                    "skopeo copy": [skopeo]}
            times = {n: [] for n in ROWS}
            cpu = {n: [] for n in ROWS}
            for group in GROUPS:
                for r in range(rounds + 1):
                    for n in group[r % len(group):] + group[:r % len(group)]:
                        for d in (root, oci, bundle):
                            shutil.rmtree(d, ignore_errors=True)
                        reset_cstorage(graphroot, runroot, driver)
                        os.makedirs(runroot, mode=0o700, exist_ok=True)
                        subprocess.run(["sync"], check=True)
                        ru = resource.getrusage(resource.RUSAGE_CHILDREN)
                        t = time.perf_counter()
                        for argv in cmds[n]:
                            cp = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, capture_output=True)
                            if cp.returncode:
                                raise SystemExit(f"{n} failed: {cp.stderr.decode(errors='replace')}")
                        dt = time.perf_counter() - t
                        ru2 = resource.getrusage(resource.RUSAGE_CHILDREN)
                        if r:
                            times[n].append(dt)
                            cpu[n].append(ru2.ru_utime - ru.ru_utime + ru2.ru_stime - ru.ru_stime)
            for d in (root, oci, bundle, src):  # src only now: deleting a tree slows what follows
                shutil.rmtree(d, ignore_errors=True)
            reset_cstorage(graphroot, runroot, driver)
            rows = {}
            for n in ROWS:
                rows[n] = summary(times[n])
                rows[n]["cpu_s"] = summary(cpu[n])
            ratios = {f"{a} / {b}": rows[a]["median"] / rows[b]["median"] for a, b in RATIOS}
            results.append({"image": {"layers": nlayers, "files_per_data_layer": nfiles,
                                      "bytes_uncompressed": uncompressed, "bytes_compressed_layers": compressed},
                            "rows": rows, "ratios": ratios,
                            "bars_met": {k: v <= 1.0 for k, v in ratios.items()}})
        return {"rounds": rounds, "containers_storage_driver": driver, "images": results,
                "versions": {t: subprocess.run([t, "--version"], capture_output=True, text=True).stdout.strip()
                             for t in ("skopeo", "umoci", "podman")}}
    finally:
        if reg:
            reg.stop()
        reset_cstorage(graphroot, runroot, driver)
        if os.path.isdir(root):  # pull leaves no mounts, but never rmtree through one
            subprocess.run(["umount", "-R", root], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


def report(res):
    print(f"median of {res['rounds']} interleaved rounds per image (ms; cpu = user+sys of the tool)")
    for img in res["images"]:
        i = img["image"]
        print(f"image {i['layers']} layers x {i['files_per_data_layer']} files: {i['bytes_uncompressed'] / 1e6:.1f} MB "
              f"uncompressed, {i['bytes_compressed_layers'] / 1e6:.1f} MB of layer blobs")
        for n, s in img["rows"].items():
            print(f"  {n:<24} {s['median'] * 1e3:7.0f} ms (min {s['min'] * 1e3:.0f}, max {s['max'] * 1e3:.0f}), "
                  f"cpu {s['cpu_s']['median'] * 1e3:.0f} ms")
        for k, v in img["ratios"].items():
            print(f"  {k}: {v:.2f}x {'(bar met)' if v <= 1.0 else '(bar MISSED)'}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", default="3x1000,5x1000,3x8000",
                    help="comma-separated LAYERSxFILES: busybox plus LAYERS-1 data layers of FILES files")
    ap.add_argument("--rounds", type=int, default=7, help="timed rounds (one more warmup round is run)")
    ap.add_argument("--json", metavar="FILE", help="write samples, medians and ratios as JSON")
    ap.add_argument("--workdir", help="where the temporary directory goes (default $TMPDIR or /tmp)")
    ap.add_argument("--driver", default="overlay", choices=("overlay", "vfs"),
                    help="containers-storage driver for the skopeo→c/storage row (vfs copies each layer "
                         "whole; overlay is podman's default and works on this host's ext4)")
    a = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root (pyctr's store applies layers with their owners)")
    res = run(a.rounds, parse_images(a.images), a.workdir, a.driver)
    report(res)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=2)


if __name__ == "__main__":
    main()
