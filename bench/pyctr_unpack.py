"""Layer unpack throughput: pyctr's layer apply vs GNU tar vs `umoci unpack`, on the very same layer
bytes, in one run. Prints median MB/s, files/s and ratios; never asserts.

    .venv/bin/python3 bench/pyctr_unpack.py [--files 3000] [--rounds 7] [--gzip] [--json FILE]

The layer (a busybox rootfs plus N files of 4 KiB, every tenth 64 KiB) is written once as an
uncompressed tar. umoci reads it from an OCI layout whose layer blob is a hard link to that file
(mediaType application/vnd.oci.image.layer.v1.tar), so all three read the same inode. With --gzip the
tar is gzipped once and all three decompress it (tar -z, pyctr's gzip reader, umoci). Each round runs
the three in rotating order, each as its own process into a fresh directory; removing the previous
tree and `sync` are outside the timed span. The first round is a warmup and is discarded.
"""
import argparse
import hashlib
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

PYCTR_APPLY = ("import sys; sys.path[:0] = sys.argv[3:]\n"
               "from pyctr.image.layer import apply_layer\n"
               "with open(sys.argv[1], 'rb') as f: apply_layer(f, sys.argv[2])\n")


def build_layer(work, nfiles):
    from integration.helpers.bundle import make_rootfs
    rootfs = make_rootfs(os.path.join(work, "rootfs"))
    rnd = os.urandom(65536)
    for i in range(nfiles):
        d = os.path.join(rootfs, "data", f"d{i % 50}")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, f"f{i}"), "wb") as f:
            f.write((rnd[i % 4096:] + rnd[:i % 4096])[: 4096 if i % 10 else 65536])
    path = os.path.join(work, "layer.tar")
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tf:
        for name in sorted(os.listdir(rootfs)):
            tf.add(os.path.join(rootfs, name), arcname=name)
    shutil.rmtree(rootfs)
    with tarfile.open(path) as tf:
        count = len(tf.getmembers())
    return path, count


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


def oci_layout(work, blob_path, media_type):
    """An OCI image layout whose only layer blob is a hard link to blob_path."""
    oci = os.path.join(work, "oci")
    blobs = os.path.join(oci, "blobs", "sha256")
    os.makedirs(blobs)
    ldig = sha256_file(blob_path)
    os.link(blob_path, os.path.join(blobs, ldig))

    def put(doc):
        data = json.dumps(doc).encode()
        d = hashlib.sha256(data).hexdigest()
        with open(os.path.join(blobs, d), "wb") as f:
            f.write(data)
        return {"digest": "sha256:" + d, "size": len(data)}

    diff_id = ldig if media_type.endswith(".tar") else None
    if diff_id is None:
        import gzip
        with gzip.open(blob_path) as g:
            h = hashlib.sha256()
            for b in iter(lambda: g.read(1 << 20), b""):
                h.update(b)
            diff_id = h.hexdigest()
    cfg = put({"architecture": "amd64", "os": "linux", "config": {},
               "rootfs": {"type": "layers", "diff_ids": ["sha256:" + diff_id]}})
    man = put({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
               "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **cfg},
               "layers": [{"mediaType": media_type, "digest": "sha256:" + ldig,
                           "size": os.path.getsize(blob_path)}]})
    with open(os.path.join(oci, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    with open(os.path.join(oci, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json", **man,
            "annotations": {"org.opencontainers.image.ref.name": "bench"}}]}, f)
    return oci


def summary(samples):
    return {"n": len(samples), "median": statistics.median(samples), "min": min(samples), "max": max(samples),
            "samples": samples}


def run(rounds, gzip_layer, nfiles, workdir=None):
    work = tempfile.mkdtemp(prefix="pyctr-bench-unpack-", dir=workdir)
    try:
        layer, count = build_layer(work, nfiles)
        size = os.path.getsize(layer)  # MB/s are of the uncompressed tar in both modes
        blob, media_type = layer, "application/vnd.oci.image.layer.v1.tar"
        if gzip_layer:
            subprocess.run(["gzip", "-k", "-6", layer], check=True)
            blob, media_type = layer + ".gz", "application/vnd.oci.image.layer.v1.tar+gzip"
        oci = oci_layout(work, blob, media_type)
        dest = os.path.join(work, "dest")
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = os.path.join(work, "pycache")
        cmds = {
            "pyctr": [sys.executable, "-c", PYCTR_APPLY, blob, dest, os.path.join(REPO, "manager"),
                      os.path.join(REPO, "runtime")],
            "GNU tar": ["tar", "-x" + ("z" if gzip_layer else ""), "-f", blob, "-C", dest, "--same-owner",
                        "--same-permissions", "--numeric-owner", "--xattrs", "--xattrs-include=*"],
            # umoci creates the bundle dir itself (and refuses an existing one)
            "umoci unpack": ["umoci", "unpack", "--image", f"{oci}:bench", dest],
        }
        for tool in ("tar", "umoci"):
            if not shutil.which(tool):
                raise SystemExit(f"{tool} is not installed")
        names = list(cmds)
        times = {n: [] for n in names}
        cpu = {n: [] for n in names}  # user+sys of the tool and its children (tar's gzip too)
        for r in range(rounds + 1):
            order = names[r % 3:] + names[:r % 3]
            for n in order:
                shutil.rmtree(dest, ignore_errors=True)
                if n != "umoci unpack":
                    os.makedirs(dest)
                subprocess.run(["sync"], check=True)
                ru = resource.getrusage(resource.RUSAGE_CHILDREN)
                t = time.perf_counter()
                cp = subprocess.run(cmds[n], env=env, stdin=subprocess.DEVNULL, capture_output=True)
                dt = time.perf_counter() - t
                ru2 = resource.getrusage(resource.RUSAGE_CHILDREN)
                if cp.returncode:
                    raise SystemExit(f"{n} failed: {cp.stderr.decode(errors='replace')}")
                if r:
                    times[n].append(dt)
                    cpu[n].append(ru2.ru_utime - ru.ru_utime + ru2.ru_stime - ru.ru_stime)
            shutil.rmtree(dest, ignore_errors=True)
        results = {}
        for n in names:
            s = summary(times[n])
            s["MB_per_s"] = size / s["median"] / 1e6
            s["files_per_s"] = count / s["median"]
            s["cpu_s"] = summary(cpu[n])
            results[n] = s
        p = results["pyctr"]["MB_per_s"]
        ratios = {"pyctr/umoci throughput": p / results["umoci unpack"]["MB_per_s"],
                  "pyctr/GNU tar throughput": p / results["GNU tar"]["MB_per_s"]}
        bars = {"pyctr >= umoci": ratios["pyctr/umoci throughput"] >= 1.0,
                "pyctr >= 0.8x GNU tar": ratios["pyctr/GNU tar throughput"] >= 0.8}
        return {"layer": {"bytes_uncompressed": size, "bytes_blob": os.path.getsize(blob), "entries": count,
                          "compression": "gzip" if gzip_layer else "none"},
                "rounds": rounds, "results": results, "ratios": ratios, "bars_met": bars,
                "versions": {"umoci": subprocess.run(["umoci", "--version"], capture_output=True,
                                                     text=True).stdout.strip(),
                             "tar": subprocess.run(["tar", "--version"], capture_output=True,
                                                   text=True).stdout.splitlines()[0]}}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def report(res):
    lay = res["layer"]
    print(f"layer: {lay['bytes_uncompressed'] / 1e6:.1f} MB uncompressed ({lay['compression']}, blob "
          f"{lay['bytes_blob'] / 1e6:.1f} MB), {lay['entries']} entries; median of {res['rounds']} "
          f"interleaved rounds")
    for n, s in res["results"].items():
        print(f"  {n:<14} {s['MB_per_s']:8.1f} MB/s {s['files_per_s']:9.0f} files/s   "
              f"median {s['median'] * 1e3:6.0f} ms (min {s['min'] * 1e3:.0f}, max {s['max'] * 1e3:.0f}), "
              f"cpu {s['cpu_s']['median'] * 1e3:.0f} ms")
    for k, v in res["ratios"].items():
        print(f"  {k}: {v:.2f}x")
    for k, ok in res["bars_met"].items():
        print(f"  bar {k}: {'met' if ok else 'MISSED'}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=3000, help="data files in the layer besides busybox")
    ap.add_argument("--rounds", type=int, default=7, help="timed rounds (one more warmup round is run)")
    ap.add_argument("--gzip", action="store_true", help="gzip the layer once; all three decompress it")
    ap.add_argument("--json", metavar="FILE", help="write samples, medians, ratios and bars as JSON")
    ap.add_argument("--workdir", help="where the temporary directory goes (default $TMPDIR or /tmp)")
    a = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root (ownership, device nodes and xattrs are part of the work)")
    res = run(a.rounds, a.gzip, a.files, a.workdir)
    report(res)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=2)


if __name__ == "__main__":
    main()
