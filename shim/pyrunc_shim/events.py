"""Task events to containerd, in order, the way containerd 1.6's shims send them:
ttrpc containerd.services.events.ttrpc.v1.Events/Forward to $TTRPC_ADDRESS, else
`<publish-binary> --address A publish --topic T --namespace N` with the Any on stdin. An event keeps
the shim busy (out of its lean mode) from publish() until it has been sent or given up on."""
import queue
import subprocess
import threading
import time

from google.protobuf import any_pb2, timestamp_pb2

from pyrunc_shim.pb.containerd import events_pb2, ttrpc_events_pb2
from google.protobuf import empty_pb2

TOPICS = {
    "TaskCreate": "/tasks/create", "TaskStart": "/tasks/start", "TaskExit": "/tasks/exit",
    "TaskDelete": "/tasks/delete", "TaskExecAdded": "/tasks/exec-added",
    "TaskExecStarted": "/tasks/exec-started", "TaskPaused": "/tasks/paused",
    "TaskResumed": "/tasks/resumed", "TaskOOM": "/tasks/oom", "TaskCheckpointed": "/tasks/checkpointed",
}
NAMESPACE_KEY = "containerd-namespace-ttrpc"


def pack_any(msg):
    # containerd's typeurl names proto messages by their full name, without a URL prefix
    return any_pb2.Any(type_url=msg.DESCRIPTOR.full_name, value=msg.SerializeToString())


def timestamp(t):
    ts = timestamp_pb2.Timestamp()
    ts.FromNanoseconds(int(t * 1e9))
    return ts


class Publisher:
    """Events go out from one thread in the order they were made; a failed send is retried so a
    containerd restart does not lose a TaskExit."""

    def __init__(self, namespace, ttrpc_address="", publish_binary="", containerd_address="", log=None,
                 reaper=None, activity=None):
        self.reaper = reaper
        self.activity = activity
        self.namespace = namespace
        self.ttrpc_address = ttrpc_address
        self.publish_binary = publish_binary
        self.containerd_address = containerd_address
        self.sent = []  # (topic, message) for tests and debugging, bounded
        self._q = queue.Queue()
        self._client = None
        self._log = log or (lambda m: None)
        self._idle = threading.Event()
        self._idle.set()
        threading.Thread(target=self._loop, daemon=True).start()

    def publish(self, name, **fields):
        msg = getattr(events_pb2, name)(**fields)
        if self.activity is not None:
            self.activity.begin()
        self._idle.clear()
        self._q.put((TOPICS[name], msg))

    def flush(self, timeout=10):
        self._idle.wait(timeout)

    def _loop(self):
        while True:
            topic, msg = self._q.get()
            self.sent.append((topic, msg))
            del self.sent[:-256]
            for attempt in range(5):
                try:
                    self._send(topic, msg)
                    break
                except Exception as e:
                    self._log(f"publish {topic}: {e}")
                    self._client = None
                    time.sleep(0.2 * (attempt + 1))
            if self._q.empty():
                self._idle.set()
            if self.activity is not None:
                self.activity.end()

    def _send(self, topic, msg):
        if self.ttrpc_address:
            from pyrunc_shim.ttrpc.client import Client
            if self._client is None:
                self._client = Client(self.ttrpc_address, timeout=10)
            req = ttrpc_events_pb2.ForwardRequest()
            env = req.envelope
            env.timestamp.CopyFrom(timestamp(time.time()))
            env.namespace, env.topic = self.namespace, topic
            env.event.CopyFrom(pack_any(msg))
            self._client.call("containerd.services.events.ttrpc.v1.Events", "Forward", req,
                              empty_pb2.Empty, metadata={NAMESPACE_KEY: self.namespace})
        elif self.publish_binary:
            # waited for through the reaper, which owns every child of the shim
            p = subprocess.Popen([self.publish_binary, "--address", self.containerd_address, "publish",
                                  "--topic", topic, "--namespace", self.namespace],
                                 stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self.reaper.kick()
            p.stdin.write(pack_any(msg).SerializeToString())
            p.stdin.close()
            code, _ = self.reaper.wait(p.pid, 30)
            p.returncode = code
            if code:
                raise OSError(f"{self.publish_binary} publish exited {code}")
