"""Networked start to first byte: `run -d -p 127.0.0.1:PORT:80 IMAGE httpd` + the first byte of an
HTTP answer on the host port + `rm -f`, for pyctr (CNI plugins, pyrunc), podman (CNI backend,
conmon, pyrunc) and docker (a private dockerd on a bench-made bridge, no iptables: ports through
docker-proxy, runtime pyrunc), interleaved.

    .venv/bin/python3 bench/pyctr_net.py [--iterations 10]

Stores, daemons, bridges and networks live only for the run and are removed at the end."""
import argparse
import os
import shutil
import socket
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
DOCKER_BRIDGE, DOCKER_NET = "pcbdk0", "10.89.252.1/24"
PODMAN_NET = "10.89.251.0/24"


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _first_byte(port, deadline):
    while time.perf_counter() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as c:
                c.sendall(b"GET /hostname HTTP/1.0\r\n\r\n")
                if c.recv(1):
                    return
        except OSError:
            pass
        time.sleep(0.002)
    raise ManagerFailed(f"no answer on 127.0.0.1:{port}")


def one(base, flags):
    port = _free_port()
    t0 = time.perf_counter()
    cid = _run(base + ["run", "-d", *flags, "-p", f"127.0.0.1:{port}:80", IMAGE,
                       "httpd", "-f", "-p", "80", "-h", "/etc"]).strip()
    t1 = time.perf_counter()
    _first_byte(port, t1 + 20)
    t2 = time.perf_counter()
    _run(base + ["rm", "-f", *(["-t", "0"] if "podman" in base[0] else []), cid])
    t3 = time.perf_counter()
    return {"run -d -p": (t1 - t0) * 1e3, "first byte": (t2 - t1) * 1e3, "rm -f": (t3 - t2) * 1e3,
            "total": (t3 - t0) * 1e3}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--iterations", type=int, default=10)
    o = ap.parse_args()
    work = tempfile.mkdtemp(prefix="pyctr-nbench-")
    cleanups = []
    forward = open("/proc/sys/net/ipv4/ip_forward").read()
    try:
        from integration.helpers.bundle import make_rootfs
        archive = build_image(REPO, make_rootfs(os.path.join(work, "rootfs")), work)
        pyctr = [PYCTR, "--root", f"{work}/pyctr", "--runroot", f"{work}/pyctr-run"]
        _run(pyctr + ["load", "-i", archive])
        cleanups.append(lambda: _run(pyctr + ["network", "ls"]))
        pod = tempfile.mkdtemp(prefix="pyctr-npod-")
        podman = ["podman", "--root", pod + "/root", "--runroot", pod + "/rr", "--tmpdir", pod + "/tmp",
                  "--cgroup-manager", "cgroupfs", "--events-backend", "file", "--storage-driver", "overlay",
                  "--runtime", PYRUNC, "--network-backend", "cni", "--network-config-dir", pod + "/cni"]
        _run(podman + ["load", "-i", archive])
        # podman's CNI backend keeps host-local leases and its result cache in /var/lib/cni
        from integration.helpers.cni_state import DefaultCniState
        cni_state = DefaultCniState()
        _run(podman + ["network", "create", "--subnet", PODMAN_NET, "benchnet"])
        cleanups.append(lambda: (subprocess.run(podman + ["rm", "-af"], capture_output=True),
                                 subprocess.run(podman + ["network", "rm", "-f", "benchnet"], capture_output=True),
                                 cni_state.remove("benchnet"),
                                 _umount_under(pod), shutil.rmtree(pod, ignore_errors=True)))
        subprocess.run(["ip", "link", "add", DOCKER_BRIDGE, "type", "bridge"], check=True)
        cleanups.append(lambda: subprocess.run(["ip", "link", "delete", DOCKER_BRIDGE], capture_output=True))
        subprocess.run(["ip", "addr", "add", DOCKER_NET, "dev", DOCKER_BRIDGE], check=True)
        subprocess.run(["ip", "link", "set", DOCKER_BRIDGE, "up"], check=True)
        from integration.peers.test_docker import Dockerd
        dbase = tempfile.mkdtemp(prefix="pyctr-ndkr-")
        d = Dockerd(dbase, bridge=DOCKER_BRIDGE)
        cleanups.append(lambda: (d.stop(), shutil.rmtree(dbase, ignore_errors=True)))
        d("load", "-i", archive)
        docker = [d.client, "-H", f"unix://{d.sock}"]
        tools = {"pyctr": (pyctr, []),
                 "podman": (podman, ["--network", "benchnet", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096"]),
                 "docker": (docker, ["--runtime", "pyrunc"])}
        res = {t: [] for t in tools}
        for name, (base, flags) in tools.items():   # warm-up: bridges, chains, caches
            one(base, flags)
        for _ in range(o.iterations):
            for name, (base, flags) in tools.items():
                res[name].append(one(base, flags))
        print(f"median ms over {o.iterations} interleaved iterations (run -d -p 127.0.0.1:P:80 httpd, "
              f"first byte on the host port, rm -f)")
        cols = ("run -d -p", "first byte", "rm -f", "total")
        print(f"{'':8}" + "".join(f"{c:>12}" for c in cols))
        med = {}
        for name in tools:
            med[name] = {c: statistics.median(r[c] for r in res[name]) for c in cols}
            print(f"{name:8}" + "".join(f"{med[name][c]:12.1f}" for c in cols))
        print(f"pyctr/podman total {med['pyctr']['total'] / med['podman']['total']:.2f}x, "
              f"pyctr/docker total {med['pyctr']['total'] / med['docker']['total']:.2f}x")
    except ManagerFailed as e:
        print(f"bench failed: {e}", file=sys.stderr)
        return 1
    finally:
        for c in reversed(cleanups):
            try:
                c()
            except Exception as e:   # every cleanup is tried; the bench's result stands
                print(f"cleanup: {e}", file=sys.stderr)
        _umount_under(work)
        shutil.rmtree(work, ignore_errors=True)
        with open("/proc/sys/net/ipv4/ip_forward", "w") as f:
            f.write(forward)   # the bridge plugins set it: the host's value back
    return 0


if __name__ == "__main__":
    sys.exit(main())
