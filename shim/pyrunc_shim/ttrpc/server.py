"""A ttrpc server on a unix socket: one reader thread per connection, one thread per request (Wait
blocks for a container's whole life and must not hold up the others)."""
import os
import socket
import threading

from pyrunc_shim.pb.ttrpc import request_pb2
from pyrunc_shim.ttrpc import framing
from pyrunc_shim.ttrpc.framing import TtrpcError


class Server:
    def __init__(self, log=None):
        self._services = {}
        self._log = log or (lambda msg: None)
        self._listener = None
        self._conns = set()
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._active = 0
        self._idle = threading.Condition(self._lock)

    def register(self, service, methods):
        """methods: {name: (request message class, handler(request, metadata) -> message)}."""
        self._services[service] = methods

    def serve(self, listener):
        """Accept until close(); the caller's thread runs the accept loop."""
        self._listener = listener
        while not self._closed.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                if self._closed.is_set():
                    return
                raise
            with self._lock:
                self._conns.add(conn)
            threading.Thread(target=self._connection, args=(conn,), daemon=True).start()

    def close(self, grace=2.0):
        """Stop; requests in flight (the Shutdown that asked for this among them) get up to grace
        seconds to send their answers."""
        self._closed.set()
        with self._idle:
            self._idle.wait_for(lambda: self._active == 0, grace)
        if self._listener is not None:
            try:
                self._listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._listener.close()
        with self._lock:
            conns = list(self._conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _connection(self, conn):
        wlock = threading.Lock()
        try:
            while True:
                try:
                    sid, mtype, flags, payload = framing.read_frame(conn)
                except framing.OversizeFrame as e:
                    self._reply(conn, wlock, e.stream_id, framing.RESOURCE_EXHAUSTED, str(e), b"")
                    continue
                if mtype != framing.TYPE_REQUEST:
                    continue  # no streaming methods are served: data frames are ignored
                threading.Thread(target=self._handle, args=(conn, wlock, sid, payload), daemon=True).start()
        except (framing.ConnectionClosed, OSError):
            pass
        finally:
            with self._lock:
                self._conns.discard(conn)
            conn.close()

    def _handle(self, conn, wlock, sid, payload):
        with self._lock:
            self._active += 1
        try:
            self._handle1(conn, wlock, sid, payload)
        finally:
            with self._idle:
                self._active -= 1
                self._idle.notify_all()

    def _handle1(self, conn, wlock, sid, payload):
        code, message, out = framing.OK, "", b""
        try:
            req = request_pb2.Request()
            req.ParseFromString(payload)
            methods = self._services.get(req.service)
            if methods is None or req.method not in methods:
                raise TtrpcError(framing.UNIMPLEMENTED, f"{req.service}/{req.method}: not implemented")
            cls, fn = methods[req.method]
            arg = cls()
            arg.ParseFromString(req.payload)
            md = {kv.key: kv.value for kv in req.metadata}
            out = fn(arg, md).SerializeToString()
        except TtrpcError as e:
            code, message = e.code, e.message
        except Exception as e:  # a handler bug must not kill the shim; the client gets the text
            code, message = framing.UNKNOWN, f"{type(e).__name__}: {e}"
            self._log(f"internal error: {message}")
        self._reply(conn, wlock, sid, code, message, out)

    @staticmethod
    def _reply(conn, wlock, sid, code, message, out):
        resp = request_pb2.Response(payload=out)
        resp.status.code = code
        resp.status.message = message
        try:
            frame = framing.encode_frame(sid, framing.TYPE_RESPONSE, 0, resp.SerializeToString())
        except TtrpcError as e:
            resp = request_pb2.Response()
            resp.status.code, resp.status.message = e.code, e.message
            frame = framing.encode_frame(sid, framing.TYPE_RESPONSE, 0, resp.SerializeToString())
        with wlock:
            try:
                conn.sendall(frame)
            except OSError:
                pass  # the client went away; it reconnects and asks again


def listen_unix(path):
    """Bind a listening socket at path (an existing stale socket file is replaced), mode 0600."""
    if path.startswith("unix://"):
        path = path[len("unix://"):]
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    os.makedirs(os.path.dirname(path), mode=0o711, exist_ok=True)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)
    try:
        s.bind(path)
    finally:
        os.umask(old)
    s.listen(64)
    return s
