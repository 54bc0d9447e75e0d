"""A small HTTP/1.1 client connection, all the registry client (registry.py) needs.

Not http.client: importing it costs ~8 ms on every pyctr command that talks to a registry (it
brings in email.parser for its headers, and ssl even for plain HTTP), which is as much as fetching
a whole image from a local registry. This speaks what the distribution API uses: requests with a
bytes or file body (a file goes out with sendfile), responses framed by Content-Length, chunked
encoding or the end of the connection, 1xx responses skipped, keep-alive, and TLS through ssl
(imported only for https, certificates verified as http.client does).

Response bodies are read straight from the socket into the caller's buffer (readinto); only the
bytes that arrived with the headers go through an intermediate buffer.
"""
import socket

_MAX_HEAD = 65536
_RECV = 65536


class ProtocolError(OSError):
    """The server's answer is not HTTP/1.x we can read."""


class IncompleteRead(ProtocolError):
    pass


class RemoteDisconnected(ConnectionResetError):
    """The server closed the connection before answering (a keep-alive connection it had dropped)."""


class BodyTooLarge(ProtocolError):
    """A body is larger than its reader allows (read_limited)."""


def _unsafe(text):
    """A character that would end a request line or header early (request smuggling)."""
    return any(c in text for c in "\r\n\0")


def split_netloc(netloc, default_port):
    if netloc.startswith("["):  # [v6addr]:port
        host, _, rest = netloc[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else default_port
    host, sep, port = netloc.rpartition(":")
    if sep and port.isdigit():
        return host, int(port)
    return netloc, default_port


class Connection:
    """timeout bounds the connect and every wait for data (an idle peer); verify=False is TLS
    without certificate checks (an insecure registry, as Docker and podman reach one)."""

    def __init__(self, scheme, netloc, timeout=60, verify=True):
        self.scheme, self.netloc, self.timeout, self.verify = scheme, netloc, timeout, verify
        self.host, self.port = split_netloc(netloc, 443 if scheme == "https" else 80)
        self.sock = None
        self.response = None  # the last one; the connection is reusable once it is read to its end

    def _connect(self):
        # bytes, not str: a str host is encoded with the idna codec, one more import per command
        try:
            host = self.host.encode("ascii")
        except UnicodeEncodeError:
            host = self.host.encode("idna")
        err = None
        for family, kind, proto, _, addr in socket.getaddrinfo(host, self.port, 0, socket.SOCK_STREAM):
            sock = socket.socket(family, kind, proto)
            try:
                sock.settimeout(self.timeout)
                sock.connect(addr)
                break
            except OSError as e:
                sock.close()
                err = e
        else:
            raise err or OSError(f"cannot resolve {self.host}")
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.scheme == "https":
            import ssl
            if self.verify:
                ctx = ssl.create_default_context()
            else:  # no CA bundle to load either
                ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
            try:
                sock = ctx.wrap_socket(sock, server_hostname=self.host)
            except BaseException:
                sock.close()
                raise
        self.sock = sock

    def close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        self.response = None

    def abort(self):
        """From another thread: wake a recv or send blocked on this connection (it fails at once).
        The socket is shut down, not closed: its fd stays valid for the thread using it."""
        sock = self.sock
        if sock is not None:
            try:
                socket.socket.shutdown(sock, socket.SHUT_RDWR)  # not SSLSocket's: leave TLS state be
            except OSError:
                pass

    def request(self, method, path, headers=None, body=None):
        """Send a request and read the response's head; the caller reads its body."""
        if self.response is not None and not self.response.complete:
            self.close()  # an unread body is still on the wire
        if self.sock is None:
            self._connect()
        headers = dict(headers or {})
        names = {k.lower() for k in headers}
        if "content-length" not in names:
            if isinstance(body, (bytes, bytearray)):
                headers["Content-Length"] = str(len(body))
            elif body is None and method in ("POST", "PUT", "PATCH"):
                headers["Content-Length"] = "0"
            elif body is not None:
                raise ValueError("a file body needs a Content-Length header")
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.netloc}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        if any(_unsafe(line) for line in lines) or " " in path or " " in self.netloc:
            raise ProtocolError(f"refusing to send a request with a control character or space in its "
                                f"target or headers: {method} {path!r}")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        try:
            if body is None or isinstance(body, (bytes, bytearray)):
                self.sock.sendall(head + bytes(body or b""))
            else:
                self.sock.sendall(head)
                self.sock.sendfile(body)
            self.response = Response(self, method)
            return self.response
        except BaseException:
            self.close()
            raise


class Response:
    def __init__(self, conn, method):
        self.conn, self.sock = conn, conn.sock
        self.buf = bytearray()  # received, not yet consumed
        self.eof = False
        while True:
            self._read_head()
            if not 100 <= self.status < 200:
                break
        te = self.getheader("Transfer-Encoding", "").lower()
        length = self.getheader("Content-Length")
        self.chunked = False
        if method == "HEAD" or self.status in (204, 304):
            self.remaining = 0
        elif "chunked" in te:
            self.chunked, self.remaining = True, 0
            self._chunk_done = False
        elif length is not None:
            try:
                self.remaining = int(length)
            except ValueError:
                raise ProtocolError(f"invalid Content-Length {length!r}") from None
            if self.remaining < 0:
                raise ProtocolError(f"invalid Content-Length {length!r}")
        else:
            self.remaining = None  # until the server closes
            self.will_close = True
        self.complete = False
        if self.remaining == 0 and not self.chunked:
            self._finish()

    # --- the head ----------------------------------------------------------------------------------

    def _recv_more(self):
        chunk = self.sock.recv(_RECV)
        if not chunk:
            self.eof = True
        self.buf += chunk
        return len(chunk)

    def _read_head(self):
        start = 0
        while True:
            end = self.buf.find(b"\r\n\r\n", start)
            if end >= 0:
                sep = 4
                break
            end = self.buf.find(b"\n\n", start)  # bare LF line ends, tolerated
            if end >= 0:
                sep = 2
                break
            if len(self.buf) > _MAX_HEAD:
                raise ProtocolError("response head larger than 64 KiB")
            start = max(0, len(self.buf) - 3)
            if not self._recv_more():
                if not self.buf:
                    raise RemoteDisconnected("the server closed the connection without a response")
                raise ProtocolError("the connection closed inside the response head")
        head = bytes(self.buf[:end]).decode("latin-1")
        del self.buf[:end + sep]
        lines = head.replace("\r\n", "\n").split("\n")
        version, _, rest = lines[0].partition(" ")
        if not version.startswith("HTTP/1."):
            raise ProtocolError(f"not an HTTP/1.x response: {lines[0][:80]!r}")
        code, _, self.reason = rest.partition(" ")
        if not (len(code) == 3 and code.isdigit()):
            raise ProtocolError(f"invalid status line {lines[0][:80]!r}")
        self.status = int(code)
        self.headers = {}
        last = None
        for line in lines[1:]:
            if line[:1] in (" ", "\t") and last:  # obsolete line folding
                self.headers[last] += " " + line.strip()
                continue
            name, colon, value = line.partition(":")
            if not colon:
                raise ProtocolError(f"invalid header line {line[:80]!r}")
            last = name.strip().lower()
            value = value.strip()
            self.headers[last] = f"{self.headers[last]}, {value}" if last in self.headers else value
        conn = self.headers.get("connection", "").lower()
        self.will_close = "close" in conn or (version == "HTTP/1.0" and "keep-alive" not in conn)

    def getheader(self, name, default=None):
        return self.headers.get(name.lower(), default)

    # --- the body ----------------------------------------------------------------------------------

    def _finish(self):
        self.complete = True
        if self.will_close or self.buf:
            self.conn.close()

    def _raw_into(self, mv):
        """Bytes from the buffer, else one recv straight into mv."""
        if self.buf:
            n = min(len(mv), len(self.buf))
            mv[:n] = self.buf[:n]
            del self.buf[:n]
            return n
        if self.eof:
            return 0
        n = self.sock.recv_into(mv)
        if not n:
            self.eof = True
        return n

    def _line(self):
        while True:
            i = self.buf.find(b"\n")
            if i >= 0:
                line = bytes(self.buf[:i + 1])
                del self.buf[:i + 1]
                return line
            if len(self.buf) > _MAX_HEAD or not self._recv_more():
                raise IncompleteRead("the connection closed inside a chunked body")

    def _next_chunk(self):
        """Start the next chunk; False at the end of the body (trailers consumed)."""
        if self._chunk_done:
            self._line()  # the CRLF after the previous chunk's data
        size = self._line().split(b";", 1)[0].strip()
        try:
            self.remaining = int(size, 16)
        except ValueError:
            raise ProtocolError(f"invalid chunk size {size[:20]!r}") from None
        self._chunk_done = True
        if self.remaining == 0:
            while self._line().strip():
                pass
            return False
        return True

    def readinto(self, b):
        """Read up to len(b) body bytes into b; 0 at the end of the body."""
        if self.complete:
            return 0
        mv = memoryview(b).cast("B")
        if self.chunked and self.remaining == 0 and not self._next_chunk():
            self._finish()
            return 0
        if self.remaining is not None:
            mv = mv[:self.remaining]
        n = self._raw_into(mv)
        if self.remaining is None:
            if not n:
                self._finish()
            return n
        if not n:
            self.complete = True
            self.conn.close()
            raise IncompleteRead(f"the connection closed with {self.remaining} bytes of the body unread")
        self.remaining -= n
        if self.remaining == 0 and not self.chunked:
            self._finish()
        return n

    def read(self, amt=None):
        """The whole body (amt None), or up to amt bytes of it."""
        if amt is not None:
            buf = bytearray(amt)
            got = 0
            while got < amt:
                n = self.readinto(memoryview(buf)[got:])
                if not n:
                    break
                got += n
            del buf[got:]
            return bytes(buf)
        out = bytearray()
        chunk = bytearray(_RECV)
        while True:
            n = self.readinto(chunk)
            if not n:
                return bytes(out)
            out += memoryview(chunk)[:n]

    def read_limited(self, limit):
        """The whole body if it is at most limit bytes, else BodyTooLarge (having read at most
        limit + 1 bytes of it: a peer's declared or streamed size never becomes our memory)."""
        if self.remaining is not None and not self.chunked and self.remaining > limit:
            self.close()
            raise BodyTooLarge(f"body of {self.remaining} bytes, more than the {limit} allowed")
        data = self.read(limit + 1)
        if len(data) > limit:
            self.close()
            raise BodyTooLarge(f"body larger than the {limit} bytes allowed")
        return data

    def close(self):
        """Give up on the rest of the body (the connection is closed if any is left)."""
        if not self.complete:
            self.complete = True
            self.conn.close()
