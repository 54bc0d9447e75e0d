"""Start latency seen from the managers: `ctr run --rm --runc-binary RT` through a private containerd,
and `podman --runtime RT run --rm`, of /bin/true in a local busybox image (built with pyctr: no registry).

Used by bench/lifecycle.py (rows `ctr run` and `podman run`); the daemons and stores live under the
benchmark's temporary directory and are removed at the end.
"""
import os
import resource
import shutil
import subprocess
import tempfile
import time

IMAGE = "localhost/pyrunc-bench/busybox:latest"
NAMESPACE = "pyrunc-bench"
CGROUP_PARENT = "pyrunc-bench-mgr"


class ManagerFailed(Exception):
    pass


def _run(argv, timeout=300, env=None):
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=timeout, env=env)
    if p.returncode != 0:
        raise ManagerFailed("`%s` exited %d: %s" % (" ".join(argv[:6]), p.returncode,
                                                    (p.stderr or p.stdout).decode(errors="replace")[-1500:]))
    return p.stdout.decode(errors="replace")


def build_image(repo, rootfs, workdir):
    """docker-archive of `rootfs` as IMAGE, via pyctr import + save; returns its path."""
    from integration.helpers.bundle import write_rootfs_tar  # the repo is on sys.path (lifecycle.py)
    tar = os.path.join(workdir, "rootfs.tar")
    write_rootfs_tar(rootfs, tar)
    store = os.path.join(workdir, "pyctr")
    pyctr = os.path.join(repo, ".venv", "bin", "pyctr")
    archive = os.path.join(workdir, "image.tar")
    _run([pyctr, "--root", store, "import", "-c", 'CMD ["/bin/sh"]', tar, IMAGE])
    _run([pyctr, "--root", store, "save", "-o", archive, IMAGE])
    shutil.rmtree(store, ignore_errors=True)
    os.unlink(tar)
    return archive


class FixedDirs:
    """Directories made at fixed paths whatever we configure (containerd's shim sockets and fifos;
    the runtimes' default roots, tracked by lifecycle.py for the whole run: crun's probe and podman,
    which passes no --root, make them): the ones missing at construction are removed by remove()
    once empty (rmdir: what holds state is someone else's)."""

    def __init__(self, paths):
        self.made = [p for p in paths if not os.path.exists(p)]

    def remove(self):
        for path in self.made:  # children listed before their parents
            try:
                os.rmdir(path)
            except OSError:
                pass


class Containerd:
    name = "ctr run"

    def __init__(self, archive):
        self.fixed = FixedDirs(("/run/containerd/s", "/run/containerd/fifo", "/run/containerd/runc",
                                 "/run/containerd"))
        # the socket path must stay short (108 bytes): not under the benchmark's workdir
        self.base = tempfile.mkdtemp(prefix="pyrunc-bctrd-")
        self.address = os.path.join(self.base, "c.sock")
        self.proc = None
        self.seq = 0
        config = os.path.join(self.base, "config.toml")
        with open(config, "w") as f:
            f.write('version = 2\nroot = "%s/root"\nstate = "%s/state"\n'
                    'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
                    '[grpc]\n  address = "%s"\n[ttrpc]\n  address = "%s.ttrpc"\n'
                    '[debug]\n  address = ""\n[metrics]\n  address = ""\n'
                    % (self.base, self.base, self.address, self.address))
        binary = shutil.which("containerd")
        if not binary or not shutil.which("ctr"):
            raise ManagerFailed("containerd/ctr not installed")
        self.log = open(os.path.join(self.base, "log"), "wb")
        self.proc = subprocess.Popen([binary, "--config", config], stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=self.log, start_new_session=True)
        deadline = time.monotonic() + 60
        while subprocess.run(["ctr", "--address", self.address, "version"], capture_output=True).returncode:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise ManagerFailed("containerd did not start (log %s)" % self.log.name)
            time.sleep(0.1)
        self.ctr("image", "import", archive)

    def ctr(self, *args):
        return _run(["ctr", "--address", self.address, "-n", NAMESPACE, *args])

    def argv(self, runtime):
        self.seq += 1
        return ["ctr", "--address", self.address, "-n", NAMESPACE, "run", "--rm", "--runc-binary",
                runtime.binary, "--runc-root", os.path.join(self.base, "runc"),
                IMAGE, "%s-%d" % (runtime.name, self.seq), "true"]

    def close(self):
        if self.proc is None:
            return
        try:
            for cid in self.ctr("task", "ls", "-q").split():
                subprocess.run(["ctr", "--address", self.address, "-n", NAMESPACE, "task", "delete", "-f", cid],
                               capture_output=True)
            for cid in self.ctr("container", "ls", "-q").split():
                subprocess.run(["ctr", "--address", self.address, "-n", NAMESPACE, "container", "delete", cid],
                               capture_output=True)
        except ManagerFailed:
            pass
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        _umount_under(self.base)
        shutil.rmtree(self.base, ignore_errors=True)
        self.fixed.remove()


class Podman:
    name = "podman run"

    def __init__(self, archive):
        if not shutil.which("podman"):
            raise ManagerFailed("podman not installed")
        self.base = tempfile.mkdtemp(prefix="pyrunc-bpod-")   # runroot must be < 50 chars
        self.seen = {}
        self.global_args = ["podman", "--root", self.base + "/root", "--runroot", self.base + "/rr",
                            "--tmpdir", self.base + "/tmp", "--cgroup-manager", "cgroupfs",
                            "--events-backend", "file", "--storage-driver", "overlay"]
        _run(self.global_args + ["load", "-i", archive])

    def argv(self, runtime):
        limits = []
        # podman's default RLIMIT_NOFILE/NPROC exceed this machine's hard limits (no CAP_SYS_RESOURCE)
        for name, res, want in (("nofile", resource.RLIMIT_NOFILE, 1024), ("nproc", resource.RLIMIT_NPROC, 4096)):
            hard = resource.getrlimit(res)[1]
            v = want if hard < 0 else min(want, hard)
            limits += ["--ulimit", "%s=%d:%d" % (name, v, v)]
        return self.global_args + ["--runtime", runtime.binary, "run", "--rm", "--network", "none",
                                   "--cgroup-parent", "/" + CGROUP_PARENT, *limits, IMAGE, "true"]

    def close(self):
        subprocess.run(self.global_args + ["rm", "-af", "-t", "0"], capture_output=True)
        subprocess.run(self.global_args + ["rmi", "-af"], capture_output=True)
        _umount_under(self.base)
        shutil.rmtree(self.base, ignore_errors=True)


def _umount_under(top):
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    for mp in reversed(points):
        if mp == top or mp.startswith(top + "/"):
            subprocess.run(["umount", "-l", mp], capture_output=True)


def cgroup_parents():
    return (NAMESPACE, CGROUP_PARENT)
