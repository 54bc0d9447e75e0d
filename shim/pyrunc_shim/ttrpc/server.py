"""A ttrpc server on a unix socket: one reader thread per connection, one thread per request. A
request whose answer comes much later (Wait, for a container's whole life) holds no thread: its
handler returns Later, and the Reply (connection + stream id) is sent when the answer is known.

Readers wait with poll() and then read a whole frame inside an activity section, and the accept
loop likewise: the shim never execs into its lean mode with a frame half read or a connection
accepted and not recorded. export()/adopt() hand the listener, the connections and the pending
Replies over to the other mode."""
import os
import select
import socket
import threading

from pyrunc_shim.activity import Activity
from pyrunc_shim.pb.ttrpc import request_pb2
from pyrunc_shim.ttrpc import framing
from pyrunc_shim.ttrpc.framing import TtrpcError
from pyrunc_shim.ttrpc.listen import listen_unix  # noqa: F401  (where callers have found it)


class Conn:
    def __init__(self, sock):
        self.sock = sock
        self.fd = sock.fileno()
        self.wlock = threading.Lock()
        self.closed = False
        self.thread = None

    def send(self, frame):
        with self.wlock:
            if self.closed:
                return
            try:
                self.sock.sendall(frame)
            except OSError:
                pass  # the client went away; it reconnects and asks again

    def close(self):
        with self.wlock:
            self.closed = True
            self.sock.close()


class Later:
    """A handler's result when the answer comes later: bind(reply) is called with the Reply."""

    def __init__(self, bind):
        self.bind = bind


class Reply:
    """The answer still owed to one request."""

    def __init__(self, server, conn, sid):
        self.server, self.conn, self.sid = server, conn, sid

    def send(self, msg):
        self.server._reply(self.conn, self.sid, framing.OK, "", msg.SerializeToString())

    def fail(self, err):
        self.server._reply(self.conn, self.sid, err.code, err.message, b"")

    def alive(self):
        return not self.conn.closed

    def export(self):
        return [self.conn.fd, self.sid]


class Server:
    def __init__(self, log=None, activity=None):
        self._services = {}
        self._log = log or (lambda msg: None)
        self.activity = activity or Activity()
        self._listener = None
        self._conns = {}  # fd -> Conn
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._active = 0
        self._idle = threading.Condition(self._lock)

    def register(self, service, methods):
        """methods: {name: (request message class, handler(request, metadata) -> message or Later)}."""
        self._services[service] = methods

    def serve(self, listener):
        """Accept until close(), in the caller's thread."""
        self._listener = listener
        with self._lock:
            adopted = [c for c in self._conns.values() if c.thread is None]
        for c in adopted:
            self._read(c)
        listener.setblocking(False)
        p = select.poll()
        p.register(listener.fileno(), select.POLLIN)
        while not self._closed.is_set():
            p.poll()
            with self.activity.section:
                try:
                    sock, _ = listener.accept()
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    if self._closed.is_set():
                        return
                    raise
                sock.setblocking(True)
                self._read(self._add(sock))

    def _add(self, sock):
        conn = Conn(sock)
        with self._lock:
            self._conns[conn.fd] = conn
        return conn

    def _read(self, conn):
        conn.thread = threading.Thread(target=self._connection, args=(conn,), daemon=True)
        conn.thread.start()

    def adopt(self, fds):
        """Connections the previous program accepted (their fds, inherited across exec); read from
        once serve() runs, so that the service can be restored before any request is."""
        for fd in fds:
            self._add(socket.socket(fileno=fd))

    def export(self):
        """-> the fds of the open connections."""
        with self._lock:
            return [fd for fd, c in self._conns.items() if not c.closed]

    def reply_to(self, fd, sid):
        """A Reply owed on an adopted connection (None when that connection is gone)."""
        with self._lock:
            conn = self._conns.get(fd)
        return Reply(self, conn, sid) if conn is not None and not conn.closed else None

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
            conns = list(self._conns.values())
        for c in conns:
            try:
                c.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _connection(self, conn):
        p = select.poll()
        p.register(conn.fd, select.POLLIN)
        while True:
            p.poll()
            with self.activity.section:
                try:
                    sid, mtype, flags, payload = framing.read_frame(conn.sock)
                except framing.OversizeFrame as e:
                    self._reply(conn, e.stream_id, framing.RESOURCE_EXHAUSTED, str(e), b"")
                    continue
                except (framing.ConnectionClosed, OSError):
                    with self._lock:
                        self._conns.pop(conn.fd, None)
                    conn.close()
                    return
                if mtype != framing.TYPE_REQUEST:
                    continue  # no streaming methods are served: data frames are ignored
                with self._lock:
                    self._active += 1
                self.activity.begin()
                threading.Thread(target=self._handle, args=(conn, sid, payload), daemon=True).start()

    def _handle(self, conn, sid, payload):
        try:
            self._handle1(conn, sid, payload)
        finally:
            with self._idle:
                self._active -= 1
                self._idle.notify_all()
            self.activity.end()

    def _handle1(self, conn, sid, payload):
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
            result = fn(arg, md)
            if isinstance(result, Later):
                result.bind(Reply(self, conn, sid))
                return
            out = result.SerializeToString()
        except TtrpcError as e:
            code, message = e.code, e.message
        except Exception as e:  # a handler bug must not kill the shim; the client gets the text
            code, message = framing.UNKNOWN, f"{type(e).__name__}: {e}"
            self._log(f"internal error: {message}")
        self._reply(conn, sid, code, message, out)

    @staticmethod
    def _reply(conn, sid, code, message, out):
        resp = request_pb2.Response(payload=out)
        resp.status.code = code
        resp.status.message = message
        try:
            frame = framing.encode_frame(sid, framing.TYPE_RESPONSE, 0, resp.SerializeToString())
        except TtrpcError as e:
            resp = request_pb2.Response()
            resp.status.code, resp.status.message = e.code, e.message
            frame = framing.encode_frame(sid, framing.TYPE_RESPONSE, 0, resp.SerializeToString())
        conn.send(frame)
