"""A ttrpc client: unary calls, many in flight at once on one connection (odd stream ids)."""
import itertools
import socket
import threading

from pyrunc_shim.pb.ttrpc import request_pb2
from pyrunc_shim.ttrpc import framing
from pyrunc_shim.ttrpc.framing import TtrpcError


class Client:
    def __init__(self, address, timeout=None):
        path = address[len("unix://"):] if address.startswith("unix://") else address
        if path.startswith("@"):
            path = "\0" + path[1:]  # abstract socket, as older containerd shims used
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.connect(path)
        self._ids = itertools.count(1, 2)
        self._wlock = threading.Lock()
        self._lock = threading.Lock()
        self._pending = {}   # stream id -> [Event, Response or exception]
        self._closed = None
        self._timeout = timeout
        self._reader = threading.Thread(target=self._read_loop, daemon=True)
        self._reader.start()

    def call(self, service, method, request, response_cls, metadata=None, timeout=None):
        req = request_pb2.Request(service=service, method=method, payload=request.SerializeToString())
        timeout = timeout if timeout is not None else self._timeout
        if timeout:
            req.timeout_nano = int(timeout * 1e9)
        for k, v in (metadata or {}).items():
            req.metadata.add(key=k, value=v)
        sid = next(self._ids)
        slot = [threading.Event(), None]
        with self._lock:
            if self._closed is not None:
                raise self._closed
            self._pending[sid] = slot
        frame = framing.encode_frame(sid, framing.TYPE_REQUEST, 0, req.SerializeToString())
        with self._wlock:
            self._sock.sendall(frame)
        if not slot[0].wait(timeout):
            with self._lock:
                self._pending.pop(sid, None)
            raise TtrpcError(framing.DEADLINE_EXCEEDED, f"{service}/{method}: no answer in {timeout}s")
        result = slot[1]
        if isinstance(result, Exception):
            raise result
        if result.status.code != framing.OK:
            raise TtrpcError(result.status.code, result.status.message)
        out = response_cls()
        out.ParseFromString(result.payload)
        return out

    def _read_loop(self):
        err = None
        try:
            while True:
                sid, mtype, _flags, payload = framing.read_frame(self._sock)
                if mtype != framing.TYPE_RESPONSE:
                    continue
                resp = request_pb2.Response()
                resp.ParseFromString(payload)
                with self._lock:
                    slot = self._pending.pop(sid, None)
                if slot:
                    slot[1] = resp
                    slot[0].set()
        except framing.OversizeFrame as e:
            err = TtrpcError(framing.RESOURCE_EXHAUSTED, str(e))
        except (framing.ConnectionClosed, OSError) as e:
            err = framing.ConnectionClosed(f"ttrpc connection closed: {e}")
        with self._lock:
            self._closed = err
            pending, self._pending = self._pending, {}
        for slot in pending.values():
            slot[1] = err
            slot[0].set()

    def close(self):
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
