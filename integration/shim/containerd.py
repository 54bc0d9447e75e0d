"""A private containerd for the tests: root, state, sockets and config under a temp dir, the shim's
venv on its PATH; stopped and every trace removed afterwards."""
import os
import shutil
import signal
import subprocess
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VENV_BIN = os.path.join(REPO, ".venv", "bin")
NS = "pyrunc-test"


def argv_mode(argv):
    """'lean' (python -S .../pyrunc_shim/lean.py), 'full' (python -m pyrunc_shim.containerd_main, or
    the server forked by `start`, which keeps start's command line until it first goes lean) or None."""
    if any(a.endswith(b"/pyrunc_shim/lean.py") for a in argv[:3]):
        return "lean"
    if b"pyrunc_shim.containerd_main" in argv[:3] or \
            any(a.endswith(b"containerd-shim-pyrunc-v2") for a in argv[:3]) and b"start" in argv:
        return "full"
    return None


def shim_processes(address):
    """(pid, argv as bytes) of every shim process serving the containerd at address: those with
    -id and `-address <address>` in their command line (any shim binary, either pyrunc mode)."""
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open(f"/proc/{p}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if b"-id" in argv and b"-address" in argv and argv[argv.index(b"-address") + 1] == address.encode():
            yield int(p), argv


def base_config(d, address, cri):
    """The private daemon's config.toml head: root, state and sockets under d, the plugins the tests
    do not use off (the CRI plugin too, unless cri)."""
    disabled = ['"io.containerd.grpc.v1.cri"'] if not cri else []
    disabled += [f'"io.containerd.{p}"' for p in ("snapshotter.v1.btrfs", "snapshotter.v1.zfs",
                                                   "snapshotter.v1.devmapper", "snapshotter.v1.aufs",
                                                   "internal.v1.tracing", "tracing.processor.v1.otlp")]
    return f'''version = 2
root = "{d}/root"
state = "{d}/state"
disabled_plugins = [{", ".join(disabled)}]
[grpc]
  address = "{address}"
[ttrpc]
  address = "{address}.ttrpc"
[debug]
  level = "info"
[plugins."io.containerd.monitor.v1.cgroups"]
  no_prometheus = true
'''


def stop_daemon(proc, log):
    """SIGTERM, then SIGKILL after 30 s; its log closed."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    log.close()


def remove_traces(d, shim_pids):
    """After the daemon: kill shims left, unmount and remove d, and containerd's fixed run dirs when
    empty. -> what was found left (shims, mounts)."""
    problems = []
    for pid in shim_pids:
        problems.append(f"shim process {pid}")
        try:
            os.kill(int(pid), signal.SIGKILL)
        except ProcessLookupError:
            pass
    with open("/proc/self/mountinfo") as f:
        mounts = [ln.split()[4] for ln in f if d in ln.split()[4]]
    for m in sorted(mounts, key=len, reverse=True):
        problems.append(f"mount {m}")
        subprocess.run(["umount", "-l", m], capture_output=True)
    shutil.rmtree(d, ignore_errors=True)
    # the shims' socket dir and ctr's fifo dir are fixed paths: remove them when left empty
    for run in ("/run/containerd/s", "/run/containerd/fifo", "/run/containerd"):
        try:
            os.rmdir(run)
        except OSError:
            pass
    return problems


class Containerd:
    def __init__(self):
        for tool in ("containerd", "ctr"):
            if not shutil.which(tool):
                raise FileNotFoundError(f"{tool} not found: install Debian's containerd (scripts/setup)")
        self.dir = tempfile.mkdtemp(prefix="pyrunc-ctrd-")
        self.address = os.path.join(self.dir, "c.sock")
        self.root = os.path.join(self.dir, "root")
        self.state = os.path.join(self.dir, "state")
        self.runtime_root = os.path.join(self.dir, "rt")
        self.config = os.path.join(self.dir, "config.toml")
        with open(self.config, "w") as f:
            f.write(base_config(self.dir, self.address, cri=False))
        self.log = open(os.path.join(self.dir, "containerd.log"), "w+")
        env = dict(os.environ, PATH=f"{VENV_BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}")
        self.proc = subprocess.Popen(["containerd", "--config", self.config], stdout=self.log,
                                     stderr=subprocess.STDOUT, env=env, start_new_session=True)
        deadline = time.monotonic() + 60
        while not os.path.exists(self.address):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"containerd did not start:\n{self.logs()}")
            time.sleep(0.1)
        self.ctr("version")

    def logs(self):
        self.log.flush()
        with open(self.log.name) as f:
            return f.read()[-6000:]

    def ctr(self, *args, check=True, timeout=120, input=None):
        cp = subprocess.run(["ctr", "-a", self.address, "-n", NS] + list(args), capture_output=True,
                            text=True, timeout=timeout, input=input)
        if check and cp.returncode != 0:
            raise AssertionError(f"ctr {' '.join(args)} exited {cp.returncode}:\n{cp.stdout}\n{cp.stderr}\n"
                                 f"--- containerd log ---\n{self.logs()}")
        return cp

    def shim_pid(self, cid):
        """The pid of the pyrunc shim serving container cid for this containerd (either mode)."""
        for pid, argv in shim_processes(self.address):
            if argv_mode(argv) and argv[argv.index(b"-id") + 1].decode() == cid:
                return pid
        raise AssertionError(f"no pyrunc shim process for {cid}")

    def runtime_config(self, binary):
        path = os.path.join(self.dir, f"opts-{os.path.basename(binary)}.toml")
        with open(path, "w") as f:
            f.write(f'BinaryName = "{binary}"\nRoot = "{self.runtime_root}"\n')
        return path

    def stop(self):
        problems = []
        # whatever the test left: tasks, containers (each leftover is a failure, after cleanup)
        for line in self.ctr("tasks", "ls", "-q", check=False).stdout.split():
            problems.append(f"task {line}")
            self.ctr("tasks", "kill", "-s", "KILL", line, check=False)
            time.sleep(0.5)
            self.ctr("tasks", "delete", "-f", line, check=False)
        for line in self.ctr("containers", "ls", "-q", check=False).stdout.split():
            problems.append(f"container {line}")
            self.ctr("containers", "delete", line, check=False)
        self.ctr("images", "rm", "--sync", *self.ctr("images", "ls", "-q", check=False).stdout.split(),
                 check=False)
        stop_daemon(self.proc, self.log)
        problems += remove_traces(self.dir, [pid for pid, argv in shim_processes(self.address) if argv_mode(argv)])
        return problems
