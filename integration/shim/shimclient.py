"""Start a shim by hand (as containerd would) and drive it with the project's own ttrpc client;
a stand-in events service records what the shim publishes."""
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time

from google.protobuf import empty_pb2

from integration.shim.containerd import VENV_BIN, argv_mode
from pyrunc_shim.pb.containerd import events_pb2, runc_options_pb2, shim_pb2, ttrpc_events_pb2
from pyrunc_shim.events import pack_any
from pyrunc_shim.ttrpc.client import Client
from pyrunc_shim.ttrpc.server import Server, listen_unix

TASK = "containerd.task.v2.Task"
NS = "pyrunc-test"


def shim_mode(pid):
    """argv_mode of process pid (None: gone, or not a pyrunc shim)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return argv_mode(f.read().split(b"\0"))
    except OSError:
        return None


def wait_mode(pid, mode, timeout=30):
    deadline = time.monotonic() + timeout
    while shim_mode(pid) != mode:
        if time.monotonic() > deadline:
            raise AssertionError(f"shim {pid} not {mode} after {timeout}s (it is {shim_mode(pid)})")
        time.sleep(0.05)


def mapped_files(pid):
    with open(f"/proc/{pid}/maps") as f:
        return {line.split()[-1] for line in f if len(line.split()) >= 6}


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


class EventSink:
    def __init__(self, path):
        self.events = []
        self.cond = threading.Condition()
        self.server = Server()
        self.server.register("containerd.services.events.ttrpc.v1.Events",
                             {"Forward": (ttrpc_events_pb2.ForwardRequest, self._forward)})
        self.listener = listen_unix(path)
        threading.Thread(target=self.server.serve, args=(self.listener,), daemon=True).start()

    def _forward(self, req, md):
        name = req.envelope.event.type_url.rsplit(".", 1)[-1]
        msg = getattr(events_pb2, name)()
        msg.ParseFromString(req.envelope.event.value)
        with self.cond:
            self.events.append((req.envelope.topic, msg, md.get("containerd-namespace-ttrpc")))
            self.cond.notify_all()
        return empty_pb2.Empty()

    def topics(self):
        with self.cond:
            return [t for t, _, _ in self.events]

    def wait_for(self, topic, timeout=30):
        with self.cond:
            if not self.cond.wait_for(lambda: topic in [t for t, _, _ in self.events], timeout):
                raise AssertionError(f"no {topic} event; got {[t for t, _, _ in self.events]}")

    def close(self):
        self.server.close()


class Shim:
    def __init__(self, binary, cid, bundle, runtime_root, shim=None, path=None, containerd_address=None,
                 start_options=None):
        """shim: the shim executable to start (default: the venv's); path: its $PATH.
        containerd_address: start as containerd does, the socket named from it, the namespace and
        the container's group (shared by the Shims of one pod); default: a private -socket.
        start_options: an options Any for start's stdin (containerd writes the task's there)."""
        self.cid, self.bundle, self.binary, self.runtime_root = cid, bundle, binary, runtime_root
        self.dir = tempfile.mkdtemp(prefix="pyrunc-shimt-")
        self.socket = os.path.join(self.dir, "shim.sock")
        self.events = EventSink(os.path.join(self.dir, "events.sock"))
        self.grouped = containerd_address is not None
        where = ["-address", containerd_address] if self.grouped else \
            ["-address", "/nonexistent/containerd.sock", "-socket", self.socket]
        env = dict(os.environ, TTRPC_ADDRESS=os.path.join(self.dir, "events.sock"))
        if path is not None:
            env["PATH"] = path
        debug = []
        if os.environ.get("PYRUNC_SHIM_TEST_DEBUG"):  # the shim's -debug log, to <bundle>/log
            open(os.path.join(bundle, "log"), "w").close()
            debug = ["-debug"]
        cp = subprocess.run([shim or os.path.join(VENV_BIN, "containerd-shim-pyrunc-v2"), "-namespace", NS, "-id", cid,
                             *where, *debug, "start"],
                            cwd=bundle, env=env, capture_output=True, timeout=60,
                            input=start_options if isinstance(start_options, bytes) else
                            start_options.SerializeToString() if start_options else b"")
        cp.stdout, cp.stderr = cp.stdout.decode(), cp.stderr.decode()
        assert cp.returncode == 0 and not cp.stderr, cp
        if self.grouped:
            assert cp.stdout.startswith("unix:///run/containerd/s/"), cp
            self.socket = cp.stdout[len("unix://"):]
        assert cp.stdout == "unix://" + self.socket
        self.address = cp.stdout
        self.client = Client(self.address, timeout=120)
        self.pid = self.call("Connect", shim_pb2.ConnectRequest(id=cid)).shim_pid

    def serves_others(self):
        """After Shutdown: whether the (grouped) shim stays for other containers (a shim that goes
        unlinks its socket before it answers Shutdown)."""
        return os.path.exists(self.socket) and shim_mode(self.pid) is not None

    def mode(self):
        return shim_mode(self.pid)

    def wait_lean(self, timeout=30):
        """Until the shim has exec'd into its lean mode (idle for LEAN_AFTER seconds)."""
        wait_mode(self.pid, "lean", timeout)

    def reconnect(self):
        self.client.close()
        self.client = Client(self.address, timeout=120)

    def call(self, method, req, **kw):
        out = {"Wait": shim_pb2.WaitResponse, "State": shim_pb2.StateResponse, "Create": shim_pb2.CreateTaskResponse,
               "Start": shim_pb2.StartResponse, "Delete": shim_pb2.DeleteResponse, "Pids": shim_pb2.PidsResponse,
               "Stats": shim_pb2.StatsResponse, "Connect": shim_pb2.ConnectResponse}.get(method, empty_pb2.Empty)
        return self.client.call(TASK, method, req, out, metadata={"containerd-namespace-ttrpc": NS}, **kw)

    def options(self):
        return pack_any(runc_options_pb2.Options(binary_name=self.binary, root=self.runtime_root))

    def create(self, options=None, **io):
        """options: the Any to send (default: runc Options naming the test's binary and root)."""
        return self.call("Create", shim_pb2.CreateTaskRequest(id=self.cid, bundle=self.bundle,
                                                              options=options or self.options(), **io)).pid

    def close(self):
        """Tear down whatever is left: the task (force), the shim (Shutdown now, then SIGKILL)."""
        problems = []
        try:
            self.call("Kill", shim_pb2.KillRequest(id=self.cid, signal=9, all=True), timeout=30)
            # As containerd does: Delete only after the exit. A delete racing the dying processes
            # leaves runc's cgroup directories behind (they are still populated when it rmdirs).
            self.call("Wait", shim_pb2.WaitRequest(id=self.cid), timeout=30)
        except Exception:
            pass
        try:
            self.call("Delete", shim_pb2.DeleteRequest(id=self.cid), timeout=60)
        except Exception:
            pass
        try:  # a grouped shim goes when its last container is deleted (and not before)
            self.call("Shutdown", shim_pb2.ShutdownRequest(id=self.cid, now=not self.grouped), timeout=30)
        except Exception:
            pass
        self.client.close()
        if self.grouped and self.serves_others():
            self.events.close()
            shutil.rmtree(self.dir, ignore_errors=True)
            return problems
        deadline = time.monotonic() + 30
        while os.path.exists(f"/proc/{self.pid}") and time.monotonic() < deadline:
            with open(f"/proc/{self.pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    break
            time.sleep(0.1)
        if shim_mode(self.pid):
            problems.append(f"shim {self.pid} still running")
            os.kill(self.pid, signal.SIGKILL)
        subprocess.run([self.binary, "--root", self.runtime_root, "delete", "--force", self.cid],
                       capture_output=True)
        if self.grouped and os.path.exists(self.socket):
            problems.append(f"shim socket {self.socket} left")
            os.unlink(self.socket)
        self.events.close()
        shutil.rmtree(self.dir, ignore_errors=True)
        return problems
