"""Layer unpack throughput: pyctr's layer apply vs GNU tar vs `umoci unpack`, on the same layer
(a busybox rootfs plus N small files), in one run. Prints MB/s, files/s and ratios; never asserts.

    .venv/bin/python3 bench/pyctr_unpack.py [--files 3000] [--rounds 3]
"""
import argparse
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.join(REPO, "runtime"), os.path.join(REPO, "manager"), REPO]


def build_layer(work, nfiles):
    from integration.helpers.bundle import make_rootfs
    rootfs = make_rootfs(os.path.join(work, "rootfs"))
    for i in range(nfiles):
        d = os.path.join(rootfs, "data", f"d{i % 50}")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, f"f{i}"), "wb") as f:
            f.write(os.urandom(4096 if i % 10 else 65536))
    path = os.path.join(work, "layer.tar")
    with tarfile.open(path, "w") as tf:
        for name in sorted(os.listdir(rootfs)):
            tf.add(os.path.join(rootfs, name), arcname=name)
    with tarfile.open(path) as tf:
        count = len(tf.getmembers())
    return path, count


def timed(fn, rounds):
    best = None
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        dt = time.perf_counter() - t
        best = dt if best is None else min(best, dt)
    return best


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=3000)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    from pyctr.image.layer import apply_layer
    work = tempfile.mkdtemp(prefix="pyctr-bench-")
    try:
        layer, count = build_layer(work, a.files)
        size = os.path.getsize(layer)
        dest = os.path.join(work, "dest")

        def fresh():
            shutil.rmtree(dest, ignore_errors=True)
            os.makedirs(dest)

        def pyctr():
            fresh()
            with open(layer, "rb") as f:
                apply_layer(f, dest)

        def gnutar():
            fresh()
            subprocess.run(["tar", "-xpf", layer, "-C", dest, "--same-owner", "--xattrs"], check=True)

        results = {"pyctr": timed(pyctr, a.rounds), "GNU tar": timed(gnutar, a.rounds)}
        if shutil.which("umoci") and shutil.which("skopeo"):
            arch = os.path.join(work, "img.tar")
            import hashlib
            import json
            data = open(layer, "rb").read()
            cfg = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {
                "type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(data).hexdigest()]}}).encode()
            man = json.dumps([{"Config": "c.json", "RepoTags": ["b:1"], "Layers": ["l/layer.tar"]}]).encode()
            with tarfile.open(arch, "w") as tf:
                for n, b in (("c.json", cfg), ("l/layer.tar", data), ("manifest.json", man)):
                    ti = tarfile.TarInfo(n)
                    ti.size = len(b)
                    tf.addfile(ti, io.BytesIO(b))
            oci = os.path.join(work, "oci")
            subprocess.run(["skopeo", "copy", "--dest-compress=false" if False else "--quiet",
                            f"docker-archive:{arch}", f"oci:{oci}:b"], check=True, capture_output=True)

            def umoci():
                shutil.rmtree(os.path.join(work, "ub"), ignore_errors=True)
                subprocess.run(["umoci", "unpack", "--image", f"{oci}:b", os.path.join(work, "ub")], check=True,
                               capture_output=True)
            results["umoci unpack (incl. gunzip)"] = timed(umoci, a.rounds)
        print(f"layer: {size / 1e6:.1f} MB, {count} entries, best of {a.rounds}")
        for name, dt in results.items():
            print(f"  {name:<28} {size / dt / 1e6:8.1f} MB/s  {count / dt:9.0f} files/s  "
                  f"(pyctr/this = {results['pyctr'] / dt:.2f}x time)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
