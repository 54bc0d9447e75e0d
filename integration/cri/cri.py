"""A private containerd with its CRI plugin, driven the way the kubelet drives it: CNI (Debian's
bridge/host-local/loopback/portmap, a private conf dir, a bridge and a subnet of its own, no
masquerade and no gateway, so no iptables rule and no sysctl is touched), a pause image built
here (static busybox, `sleep` as the pause process) imported into the k8s.io namespace, and two
runtime handlers: `pyrunc` (io.containerd.pyrunc.v2, options through ConfigPath) and
`runc-pyrunc` (io.containerd.runc.v2 with pyrunc as BinaryName); and for bench/cri.py `runc` and
`crun` (containerd's runc shim with runc, with crun). The CRI client is grpcio with
the runtime.v1 messages generated from specs/proto/cri/api.proto (scripts/gen-proto)."""
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import grpc

from integration.cri.pb.cri import api_pb2 as api
from integration.helpers.cni_state import DefaultCniState
from integration.shim.containerd import (VENV_BIN, argv_mode, base_config, remove_traces, shim_processes,
                                        stop_daemon)
from integration.shim.images import build_docker_archive

CNI_BIN = "/usr/lib/cni"
PAUSE = "pyrunc.test/pause:1"
BUSYBOX = "pyrunc.test/busybox:1"
K8S_NS = "k8s.io"
HANDLERS = ("pyrunc", "runc-pyrunc")

_RUNTIME = "runtime.v1.RuntimeService"
_IMAGE = "runtime.v1.ImageService"


class Client:
    """The CRI v1 RuntimeService/ImageService over containerd's socket: cri.Call(Request(...))."""

    def __init__(self, address):
        self.channel = grpc.insecure_channel("unix://" + address)
        self._stubs = {}

    def __getattr__(self, rpc):
        if rpc.startswith("_"):
            raise AttributeError(rpc)
        stub = self._stubs.get(rpc)
        if stub is None:
            service = _IMAGE if rpc == "ImageStatus" else _RUNTIME
            reply = getattr(api, rpc + "Response")
            stub = self.channel.unary_unary(f"/{service}/{rpc}", request_serializer=lambda m: m.SerializeToString(),
                                            response_deserializer=reply.FromString)
            self._stubs[rpc] = stub
        return lambda req, timeout=120: stub(req, timeout=timeout)

    def close(self):
        self.channel.close()


def _free_subnet():
    """A /24 in 10.213-10.250 that no route of this machine covers (other sessions make bridges too)."""
    routes = subprocess.run(["ip", "-4", "route", "show", "table", "all"], capture_output=True, text=True).stdout
    for second in range(213, 251):
        for third in range(0, 256, 37):
            net = f"10.{second}.{third}."
            if net not in routes:
                return net + "0/24"
    raise RuntimeError("no free 10.x subnet for the CRI tests")


def _free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class CriContainerd:
    def __init__(self):
        for tool in ("containerd", "ctr"):
            if not shutil.which(tool):
                raise FileNotFoundError(f"{tool} not found: install Debian's containerd (scripts/setup)")
        for plugin in ("bridge", "host-local", "loopback", "portmap"):
            if not os.access(os.path.join(CNI_BIN, plugin), os.X_OK):
                raise FileNotFoundError(f"{CNI_BIN}/{plugin}: install Debian's containernetworking-plugins "
                                        "(scripts/setup)")
        self.dir = tempfile.mkdtemp(prefix="pyrunc-cri-")
        self.tag = os.path.basename(self.dir)[-6:].replace("_", "x").lower()
        self.bridge = f"pycri{self.tag}"[:15]
        self.subnet = _free_subnet()
        self.cgroup_parent = f"/pyrunc-cri-{self.tag}"
        self.address = os.path.join(self.dir, "c.sock")
        self.runtime_root = os.path.join(self.dir, "pyrunc-root")
        self.pyrunc = os.path.join(VENV_BIN, "pyrunc")
        self.network = f"pyrunc-cri-{self.tag}"
        self.cni_state = DefaultCniState()  # libcni's result cache: no CRI setting moves it
        self._write_config()
        self.log = open(os.path.join(self.dir, "containerd.log"), "w+")
        self.proc = None
        self.start()
        tar = os.path.join(self.dir, "images.tar")
        for ref, cmd in ((PAUSE, ["sleep", "2147483647"]), (BUSYBOX, ["sh"])):
            build_docker_archive(tar, ref, cmd)
            self.ctr("images", "import", tar)
        os.unlink(tar)
        self.cri = Client(self.address)

    def _write_config(self):
        cni = os.path.join(self.dir, "cni")
        os.makedirs(cni)
        with open(os.path.join(cni, "10-pyrunc-test.conflist"), "w") as f:
            json.dump({"cniVersion": "1.0.0", "name": self.network, "plugins": [
                {"type": "bridge", "bridge": self.bridge, "isGateway": False, "ipMasq": False,
                 "ipam": {"type": "host-local", "ranges": [[{"subnet": self.subnet}]],
                          "dataDir": os.path.join(self.dir, "ipam")}},
                {"type": "portmap", "capabilities": {"portMappings": True}}]}, f)
        with open(os.path.join(self.dir, "pyrunc.toml"), "w") as f:
            f.write(f'BinaryName = "{self.pyrunc}"\nRoot = "{self.runtime_root}"\n')
        runtimes = '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes'
        with open(os.path.join(self.dir, "config.toml"), "w") as f:
            f.write(base_config(self.dir, self.address, cri=True) + f'''[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE}"
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "{_free_port()}"
  netns_mounts_under_state_dir = true
  enable_cdi = false
[plugins."io.containerd.grpc.v1.cri".cni]
  bin_dir = "{CNI_BIN}"
  conf_dir = "{cni}"
[plugins."io.containerd.grpc.v1.cri".containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "pyrunc"
{runtimes}.pyrunc]
  runtime_type = "io.containerd.pyrunc.v2"
{runtimes}.pyrunc.options]
  TypeUrl = "io.containerd.pyrunc.v1.options"
  ConfigPath = "{self.dir}/pyrunc.toml"
{runtimes}.runc-pyrunc]
  runtime_type = "io.containerd.runc.v2"
{runtimes}.runc-pyrunc.options]
  BinaryName = "{self.pyrunc}"
  Root = "{self.runtime_root}"
{runtimes}.runc]
  runtime_type = "io.containerd.runc.v2"
{runtimes}.runc.options]
  BinaryName = "{shutil.which("runc") or "runc"}"
  Root = "{self.dir}/runc-root"
{runtimes}.crun]
  runtime_type = "io.containerd.runc.v2"
{runtimes}.crun.options]
  BinaryName = "{shutil.which("crun") or "crun"}"
  Root = "{self.dir}/crun-root"
''')

    def start(self):
        env = dict(os.environ, PATH=f"{VENV_BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}")
        self.proc = subprocess.Popen(["containerd", "--config", os.path.join(self.dir, "config.toml")],
                                     stdout=self.log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"containerd did not start:\n{self.logs()}")
            if os.path.exists(self.address):
                cp = subprocess.run(["ctr", "-a", self.address, "plugins", "ls"], capture_output=True, text=True)
                if cp.returncode == 0:
                    cri = [ln for ln in cp.stdout.splitlines() if "io.containerd.grpc.v1" in ln and " cri " in ln]
                    if cri and cri[0].split()[-1] != "ok":
                        raise RuntimeError(f"the CRI plugin did not load: {cri[0]}\n{self.logs()}")
                    break
            time.sleep(0.1)

    def restart(self):
        """containerd stopped (SIGTERM) and started again: the shims and pods live on."""
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(30)
        self.start()

    def logs(self):
        self.log.flush()
        with open(self.log.name) as f:
            return f.read()[-8000:]

    def ctr(self, *args, check=True):
        cp = subprocess.run(["ctr", "-a", self.address, "-n", K8S_NS] + list(args), capture_output=True,
                            text=True, timeout=120)
        if check and cp.returncode != 0:
            raise AssertionError(f"ctr {' '.join(args)}: {cp.stderr}\n--- containerd log ---\n{self.logs()}")
        return cp

    # -- what a pod leaves on the machine --------------------------------------------------------
    def shims(self):
        """pid -> 'pyrunc' or 'runc' of every shim serving this containerd."""
        out = {}
        for pid, argv in shim_processes(self.address):
            if argv_mode(argv):
                out[pid] = "pyrunc"
            elif argv and argv[0].endswith(b"containerd-shim-runc-v2"):
                out[pid] = "runc"
        return out

    def _cgroup_parents(self):
        """The test's parent cgroup dir in each mounted hierarchy where it exists."""
        out = []
        with open("/proc/self/mountinfo") as f:
            for line in f:
                fields = line.split()
                if fields[fields.index("-") + 1] in ("cgroup", "cgroup2"):
                    d = fields[4] + self.cgroup_parent
                    if os.path.isdir(d):
                        out.append(d)
        return out

    def traces(self):
        """Whatever pods left: netns, veths on the bridge, cgroups, mounts, shims, IPs, CNI chains."""
        found = []
        netns = os.path.join(self.dir, "state", "io.containerd.grpc.v1.cri", "netns")
        if os.path.isdir(netns):
            found += [f"netns {n}" for n in os.listdir(netns)]
        veths = subprocess.run(["ip", "-br", "link", "show", "master", self.bridge], capture_output=True,
                               text=True).stdout.split("\n")
        found += [f"veth {ln.split()[0]}" for ln in veths if ln.strip()]
        for parent in self._cgroup_parents():
            for pod in os.listdir(parent):
                if os.path.isdir(os.path.join(parent, pod)):
                    found += [f"cgroup {parent}/{pod}/{c}" for c in os.listdir(os.path.join(parent, pod))
                              if os.path.isdir(os.path.join(parent, pod, c))]
        with open("/proc/self/mountinfo") as f:
            found += [f"mount {ln.split()[4]}" for ln in f
                      if self.dir in ln.split()[4] and "/root/io.containerd" not in ln.split()[4]]
        found += [f"{kind} shim {pid}" for pid, kind in self.shims().items()]
        ipam = os.path.join(self.dir, "ipam")
        for _, _, files in os.walk(ipam):
            found += [f"ip {f}" for f in files if f[0].isdigit()]
        rules = subprocess.run(["iptables-save"], capture_output=True, text=True).stdout
        found += [f"iptables {ln}" for ln in rules.splitlines() if self.subnet.rsplit(".", 1)[0] + "." in ln]
        return found

    def stop(self):
        """Remove every pod (a leftover one is a failure), stop containerd, and remove every trace."""
        problems = []
        try:
            for pod in self.cri.ListPodSandbox(api.ListPodSandboxRequest(), timeout=30).items:
                problems.append(f"pod {pod.metadata.name}")
                self.cri.StopPodSandbox(api.StopPodSandboxRequest(pod_sandbox_id=pod.id), timeout=60)
                self.cri.RemovePodSandbox(api.RemovePodSandboxRequest(pod_sandbox_id=pod.id), timeout=60)
        except grpc.RpcError as e:
            problems.append(f"pod cleanup: {e.details()}")
        problems += self.traces()
        self.cri.close()
        stop_daemon(self.proc, self.log)
        remove_traces(self.dir, list(self.shims()))  # what it finds is in traces() already
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True)
        problems += [f"CNI state {p}" for p in self.cni_state.leftovers(self.network)]
        self.cni_state.remove(self.network)
        for parent in self._cgroup_parents():  # the pods' parent (the kubelet's to make and remove)
            for d, _, _ in sorted(os.walk(parent), key=lambda w: -len(w[0])):
                try:
                    os.rmdir(d)
                except OSError as e:
                    problems.append(f"cgroup {d}: {e.strerror}")
        return problems
