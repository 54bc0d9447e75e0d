#!/usr/bin/env python3
"""How soon a new shim answers: `<shim> start` run as containerd runs it (a bundle whose
config.json carries a CRI sandbox id, options on stdin as the CRI plugin sends them), timed from
the exec to start's exit (containerd waits for that, then reads the address) and to the answer of
a first request (Connect) on the printed address; the shim is then shut down. Interleaved runs of
containerd-shim-pyrunc-v2 and containerd-shim-runc-v2, medians.
Run as root from the repository: .venv/bin/python3 bench/shim_start.py [--runs 15] [--shim NAME=PATH]"""
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
sys.path.insert(0, os.path.join(REPO, "shim"))
from google.protobuf import empty_pb2  # noqa: E402

from pyrunc_shim.events import pack_any  # noqa: E402
from pyrunc_shim.pb.containerd import runc_options_pb2, shim_pb2  # noqa: E402
from pyrunc_shim.ttrpc.client import Client  # noqa: E402

SHIMS = {"pyrunc": os.path.join(REPO, ".venv", "bin", "containerd-shim-pyrunc-v2"),
         "runc": shutil.which("containerd-shim-runc-v2") or "/usr/bin/containerd-shim-runc-v2"}
TASK = "containerd.task.v2.Task"


def once(shim, d, n, options):
    bundle = os.path.join(d, f"b{n}")
    os.mkdir(bundle)
    os.mkfifo(os.path.join(bundle, "log"))  # the shim's log, as containerd opens it
    log_r = os.open(os.path.join(bundle, "log"), os.O_RDONLY | os.O_NONBLOCK)
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump({"ociVersion": "1.0.2", "annotations": {"io.kubernetes.cri.sandbox-id": f"pod{n}"}}, f,
                  separators=(",", ":"))
    env = dict(os.environ, TTRPC_ADDRESS=os.path.join(d, "events.sock"))
    t0 = time.perf_counter()
    cp = subprocess.run([shim, "-namespace", "bench", "-id", f"c{n}", "-address", os.path.join(d, "c.sock"), "start"],
                        cwd=bundle, input=options, capture_output=True, env=env, timeout=30)
    t1 = time.perf_counter()
    if cp.returncode != 0:
        raise RuntimeError(f"{shim} start: {cp.stderr.decode()}")
    address = cp.stdout.decode().strip()
    c = Client(address, timeout=30)
    md = {"containerd-namespace-ttrpc": "bench"}
    try:
        c.call(TASK, "Connect", shim_pb2.ConnectRequest(id=f"c{n}"), shim_pb2.ConnectResponse, metadata=md)
    except Exception:
        raise RuntimeError(f"{shim}: no answer; its log: {os.read(log_r, 65536)[-2000:]!r}") from None
    finally:
        os.close(log_r)
    t2 = time.perf_counter()
    c.call(TASK, "Shutdown", shim_pb2.ShutdownRequest(id=f"c{n}", now=True), empty_pb2.Empty, metadata=md)
    c.close()
    return (t1 - t0) * 1000, (t2 - t0) * 1000


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--shim", action="append", default=[], metavar="NAME=PATH",
                    help="another shim executable to compare (e.g. an older build)")
    a = ap.parse_args()
    for extra in a.shim:
        name, _, path = extra.partition("=")
        SHIMS[name] = path
    d = tempfile.mkdtemp(prefix="pyrunc-shimstart-")
    sys.path.insert(0, REPO)
    from integration.shim.shimclient import EventSink
    events = EventSink(os.path.join(d, "events.sock"))  # the Go shim connects to it as it starts
    options = pack_any(runc_options_pb2.Options(binary_name="runc"))
    results = {k: [] for k in SHIMS}
    try:
        n = 0
        for r in range(a.runs + 2):
            for k, shim in (list(SHIMS.items()) if r % 2 else list(SHIMS.items())[::-1]):  # interleaved
                n += 1
                got = once(shim, d, n, options.SerializeToString())
                if r >= 2:  # two warm-up rounds
                    results[k].append(got)
                time.sleep(0.2)
    finally:
        events.close()
        shutil.rmtree(d, ignore_errors=True)
    print(f"New shim, median of {a.runs}: start's exit / first answer (ms from the exec)")
    for k, rs in results.items():
        print(f"  {k:<7} {statistics.median(r[0] for r in rs):6.1f} / {statistics.median(r[1] for r in rs):6.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
