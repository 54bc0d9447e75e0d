"""Pull time from a local registry: `pyctr pull` vs `skopeo copy docker://... oci:DIR`, in one run.
Prints medians and the ratio; never asserts.

    .venv/bin/python3 bench/pyctr_pull.py [--layers 3] [--files 1000] [--rounds 7] [--json FILE]

A docker-registry on 127.0.0.1 (the test suite's helper: temp config and storage) gets one image
pushed by skopeo: a busybox layer and LAYERS-1 data layers of FILES files each (skopeo gzips them on
the way, as registries hold them). Each round runs both in rotating order, each into a fresh store
(pyctr: an empty --root; skopeo: an empty OCI layout dir); clearing and `sync` are untimed. The first
round is a warmup and is discarded.

pyctr's time includes what `skopeo copy` does not do: applying every layer into overlay2 (skopeo only
stores the blobs). So a third row, `skopeo+umoci`, times `skopeo copy` followed by `umoci unpack` of
the copied image into a rootfs: the same work as a pull that unpacks.

A fourth row, `skopeo→c/storage`, is what `podman pull` does: `skopeo copy` into containers-storage
(`containers-storage:[overlay@GRAPHROOT+RUNROOT]img`, a fresh graphroot and runroot every round),
which downloads, verifies and applies every layer into an overlay layer store with its own metadata:
the like-for-like comparison for a pull that leaves a usable image store. Each round's store is
removed untimed with `podman system reset -f`, then any mount left under the graphroot (the overlay
driver bind-mounts its home onto itself) is detached before the tree is removed.
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


def profile_split(pyctr, root, image, env, work):
    """One more pull under cProfile: how much of it is applying layers, how much the rest (the
    registry round trips, downloads, digest checks, store bookkeeping, interpreter start)."""
    import pstats
    shutil.rmtree(root, ignore_errors=True)
    prof = os.path.join(work, "pull.prof")
    with open(pyctr) as f:
        python = f.readline()[2:].strip()
    t = time.perf_counter()
    subprocess.run([python, "-m", "cProfile", "-o", prof, pyctr, "--root", root, "pull", "--insecure", "--quiet",
                    image], env=env, check=True, capture_output=True)
    wall = time.perf_counter() - t
    st = pstats.Stats(prof).stats
    apply_s = sum(v[3] for k, v in st.items() if k[2] == "apply_layer" and k[0].endswith("layer.py"))
    fetch_s = sum(v[3] for k, v in st.items() if k[2] == "fetch_blob" and k[0].endswith("pull.py"))
    shutil.rmtree(root, ignore_errors=True)
    return {"wall_s": wall, "apply_layer_s": apply_s, "fetch_blob_s_summed_over_threads": fetch_s,
            "wall_minus_apply_s": wall - apply_s}


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


def run(rounds, nlayers, nfiles, workdir=None, profile=False, driver="overlay"):
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
    try:
        archive, uncompressed = make_archive(work, nlayers, nfiles)
        reg = Registry(os.path.join(work, "registry"))
        image = f"{reg.host}/bench/img:1"
        subprocess.run(["skopeo", "copy", "--quiet", "--dest-tls-verify=false", f"docker-archive:{archive}",
                        f"docker://{image}"], check=True, capture_output=True)
        blobs = subprocess.run(["du", "-sb", reg.storage], check=True, capture_output=True,
                               text=True).stdout.split()[0]
        root = os.path.join(work, "pyctr-root")
        oci = os.path.join(work, "oci")
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = os.path.join(work, "pycache")
        env["REGISTRY_AUTH_FILE"] = os.path.join(work, "auth.json")
        bundle = os.path.join(work, "bundle")
        skopeo = ["skopeo", "copy", "--quiet", "--src-tls-verify=false", f"docker://{image}", f"oci:{oci}:img"]
        cmds = {"pyctr pull": [[pyctr, "--root", root, "pull", "--insecure", "--quiet", image]],
                "skopeo copy": [skopeo],
                # the same work as a pull that unpacks: fetch, then layers applied into a rootfs
                "skopeo+umoci": [skopeo, ["umoci", "unpack", "--image", f"{oci}:img", bundle]],
                # what `podman pull` does: fetch, verify, apply into an overlay layer store
                "skopeo→c/storage": [["skopeo", "copy", "--quiet", "--src-tls-verify=false", f"docker://{image}",
                                      f"containers-storage:[{driver}@{graphroot}+{runroot}]img"]]}
        names = list(cmds)
        times = {n: [] for n in names}
        cpu = {n: [] for n in names}
        for r in range(rounds + 1):
            for n in names[r % len(names):] + names[:r % len(names)]:
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
        for d in (root, oci, bundle):
            shutil.rmtree(d, ignore_errors=True)
        reset_cstorage(graphroot, runroot, driver)
        split = profile_split(pyctr, root, image, env, work) if profile else None
        results = {}
        for n in names:
            results[n] = summary(times[n])
            results[n]["cpu_s"] = summary(cpu[n])
        ratio = results["pyctr pull"]["median"] / results["skopeo copy"]["median"]
        ratio2 = results["pyctr pull"]["median"] / results["skopeo+umoci"]["median"]
        ratio3 = results["pyctr pull"]["median"] / results["skopeo→c/storage"]["median"]
        return {"image": {"layers": nlayers, "files_per_data_layer": nfiles, "bytes_uncompressed": uncompressed,
                          "registry_storage_bytes": int(blobs)},
                "rounds": rounds, "results": results, "ratios": {"pyctr/skopeo copy time": ratio, "pyctr/(skopeo copy+umoci unpack) time": ratio2,
                                                    f"pyctr/(skopeo copy to containers-storage {driver}) time": ratio3},
                "containers_storage_driver": driver,
                "bars_met": {"pyctr pull time <= skopeo copy time": ratio <= 1.0,
                             "pyctr pull time <= skopeo copy + umoci unpack time": ratio2 <= 1.0,
                             "pyctr pull time <= skopeo copy to containers-storage time": ratio3 <= 1.0},
                "profile": split,
                "versions": {"skopeo": subprocess.run(["skopeo", "--version"], capture_output=True,
                                                      text=True).stdout.strip()}}
    finally:
        if reg:
            reg.stop()
        reset_cstorage(graphroot, runroot, driver)
        root = os.path.join(work, "pyctr-root")
        if os.path.isdir(root):  # pull leaves no mounts, but never rmtree through one
            subprocess.run(["umount", "-R", root], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


def report(res):
    img = res["image"]
    print(f"image: {img['layers']} layers, {img['bytes_uncompressed'] / 1e6:.1f} MB uncompressed, registry "
          f"storage {img['registry_storage_bytes'] / 1e6:.1f} MB; median of {res['rounds']} interleaved rounds")
    for n, s in res["results"].items():
        print(f"  {n:<16} median {s['median'] * 1e3:7.0f} ms (min {s['min'] * 1e3:.0f}, max {s['max'] * 1e3:.0f}), "
              f"cpu {s['cpu_s']['median'] * 1e3:.0f} ms")
    for k, v in res["ratios"].items():
        print(f"  {k}: {v:.2f}x")
    for k, ok in res["bars_met"].items():
        print(f"  bar {k}: {'met' if ok else 'MISSED'}")
    p = res.get("profile")
    if p:
        print(f"  profiled pull (cProfile, slower): {p['wall_s'] * 1e3:.0f} ms, of which apply_layer "
              f"{p['apply_layer_s'] * 1e3:.0f} ms; everything else {p['wall_minus_apply_s'] * 1e3:.0f} ms "
              f"(compare with skopeo copy's median)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--layers", type=int, default=3, help="layers: busybox plus LAYERS-1 data layers")
    ap.add_argument("--files", type=int, default=1000, help="files per data layer")
    ap.add_argument("--rounds", type=int, default=7, help="timed rounds (one more warmup round is run)")
    ap.add_argument("--json", metavar="FILE", help="write samples, medians, ratio and bar as JSON")
    ap.add_argument("--workdir", help="where the temporary directory goes (default $TMPDIR or /tmp)")
    ap.add_argument("--profile", action="store_true",
                    help="afterwards, one pull under cProfile: time in apply_layer vs the rest")
    ap.add_argument("--driver", default="overlay", choices=("overlay", "vfs"),
                    help="containers-storage driver for the skopeo→c/storage row (vfs copies each layer "
                         "whole; overlay is podman's default and works on this host's ext4)")
    a = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root (pyctr's store applies layers with their owners)")
    res = run(a.rounds, a.layers, a.files, a.workdir, a.profile, a.driver)
    report(res)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=2)


if __name__ == "__main__":
    main()
