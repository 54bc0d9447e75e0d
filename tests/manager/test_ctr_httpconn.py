"""httpconn, pyctr's HTTP/1.1 client, against a real TCP server on 127.0.0.1 that sends exactly the
bytes each test gives it (framing by Content-Length, chunked, end of connection; keep-alive; a
dropped keep-alive connection; a body cut short; 1xx; a file body sent with sendfile)."""
import socket
import threading

import pytest

from pyctr.image import httpconn


class Close(bytes):
    """A canned reply after which the server closes the connection."""


class RawServer:
    """Accepts connections; for each request read, sends the next canned reply (bytes; then closes
    the connection if it is a Close) or, for None, closes the connection without a word. Records
    (connection number, request head, request body)."""

    def __init__(self, replies):
        self.replies = list(replies)
        self.requests = []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.netloc = f"127.0.0.1:{self.sock.getsockname()[1]}"
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        n = 0
        while self.replies:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            n += 1
            try:
                self._talk(conn, n)
            except OSError:  # the client hung up first
                pass
            finally:
                conn.close()

    def _talk(self, conn, n):
        buf = b""
        while self.replies:
            while b"\r\n\r\n" not in buf:
                data = conn.recv(65536)
                if not data:
                    break
                buf += data
            if b"\r\n\r\n" not in buf:
                break
            head, _, buf = buf.partition(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                k, _, v = line.partition(b":")
                if k.strip().lower() == b"content-length":
                    length = int(v)
            while len(buf) < length:
                buf += conn.recv(65536)
            body, buf = buf[:length], buf[length:]
            self.requests.append((n, head.decode(), body))
            reply = self.replies.pop(0)
            if reply is None:
                break
            conn.sendall(reply)
            if isinstance(reply, Close):
                break

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes a blocked accept(), which close() does not
        except OSError:
            pass
        self.sock.close()
        self.thread.join(10)
        assert not self.thread.is_alive()


@pytest.fixture
def server(request):
    servers = []

    def make(*replies):
        s = RawServer(replies)
        servers.append(s)
        return s
    yield make
    for s in servers:
        s.close()


def ok(body, extra=b""):
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n%s" % (len(body), extra, body)


def test_content_length_bodies_on_one_kept_alive_connection(server):
    s = server(ok(b"first"), ok(b"second body", b"X-Thing: a\r\nX-Thing: b\r\n"))
    c = httpconn.Connection("http", s.netloc, timeout=20)
    r = c.request("GET", "/one", {"User-Agent": "t"})
    assert (r.status, r.reason, r.read()) == (200, "OK", b"first")
    r = c.request("GET", "/two")
    assert r.getheader("x-thing") == "a, b" and r.getheader("Missing", "d") == "d"
    assert r.read(6) == b"second" and r.read() == b" body" and r.read() == b""
    c.close()
    assert [n for n, _, _ in s.requests] == [1, 1]
    assert s.requests[0][1].splitlines()[:3] == ["GET /one HTTP/1.1", f"Host: {s.netloc}", "User-Agent: t"]


def test_chunked_body_with_extensions_and_trailers(server):
    body = b"5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nTrailer: x\r\n\r\n"
    s = server(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + body, ok(b"next"))
    c = httpconn.Connection("http", s.netloc, timeout=20)
    r = c.request("GET", "/")
    buf = bytearray(3)
    got = b""
    while True:
        n = r.readinto(buf)
        if not n:
            break
        got += buf[:n]
    assert got == b"hello, world" and r.complete
    assert c.request("GET", "/again").read() == b"next"  # the connection was left clean
    c.close()
    assert [n for n, _, _ in s.requests] == [1, 1]


def test_body_until_close_and_http10(server):
    s = server(Close(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nall of it"), ok(b"fresh"))
    c = httpconn.Connection("http", s.netloc, timeout=20)
    assert c.request("GET", "/").read() == b"all of it"
    assert c.sock is None  # read to the close: not reusable
    assert c.request("GET", "/").read() == b"fresh"
    c.close()
    assert [n for n, _, _ in s.requests] == [1, 2]


def test_head_204_and_interim_100(server):
    s = server(b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n",
               b"HTTP/1.1 204 No Content\r\n\r\n",
               b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nLocation: /x\r\nContent-Length: 0\r\n\r\n")
    c = httpconn.Connection("http", s.netloc, timeout=20)
    r = c.request("HEAD", "/blob")
    assert r.status == 200 and r.getheader("Content-Length") == "1234" and r.read() == b""
    assert c.request("DELETE", "/x").status == 204
    r = c.request("POST", "/up", {"Content-Length": "0"}, b"")
    assert (r.status, r.getheader("location")) == (201, "/x")
    c.close()
    assert {n for n, _, _ in s.requests} == {1}


def test_file_body_goes_out_whole(server, tmp_path):
    data = bytes(range(256)) * 5000
    path = tmp_path / "blob"
    path.write_bytes(data)
    s = server(b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n")
    c = httpconn.Connection("http", s.netloc, timeout=20)
    with open(path, "rb") as f:
        assert c.request("PUT", "/up", {"Content-Length": str(len(data))}, f).status == 201
    c.close()
    assert s.requests[0][2] == data
    with pytest.raises(ValueError):
        httpconn.Connection("http", s.netloc, timeout=20).request("PUT", "/up", {}, open(path, "rb"))


def test_dropped_keep_alive_connection_is_remote_disconnected(server):
    s = server(ok(b"one"), None, ok(b"two"))
    c = httpconn.Connection("http", s.netloc, timeout=20)
    assert c.request("GET", "/").read() == b"one"
    with pytest.raises(httpconn.RemoteDisconnected):  # registry.Client retries this once
        c.request("GET", "/")
    assert c.request("GET", "/").read() == b"two"  # a fresh connection
    c.close()


def test_body_cut_short_raises_incomplete_read(server):
    s = server(Close(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this"))
    c = httpconn.Connection("http", s.netloc, timeout=20)
    r = c.request("GET", "/")
    with pytest.raises(httpconn.IncompleteRead):
        r.read()
    assert c.sock is None


def test_unread_body_is_not_mistaken_for_the_next_response(server):
    s = server(ok(b"x" * 100000), ok(b"second"))
    c = httpconn.Connection("http", s.netloc, timeout=20)
    r = c.request("GET", "/big")
    assert r.read(10) == b"x" * 10
    assert c.request("GET", "/").read() == b"second"  # on a new connection
    c.close()
    assert [n for n, _, _ in s.requests] == [1, 2]


@pytest.mark.parametrize("reply", [b"SSH-2.0-OpenSSH\r\n\r\n", b"HTTP/1.1 2x0 Odd\r\n\r\n",
                                   b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
                                   b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n"])
def test_malformed_responses_are_protocol_errors(server, reply):
    s = server(reply)
    c = httpconn.Connection("http", s.netloc, timeout=20)
    with pytest.raises(httpconn.ProtocolError):
        c.request("GET", "/")
    c.close()


def test_split_netloc():
    assert httpconn.split_netloc("registry:5000", 443) == ("registry", 5000)
    assert httpconn.split_netloc("registry", 443) == ("registry", 443)
    assert httpconn.split_netloc("[::1]:5000", 80) == ("::1", 5000)
    assert httpconn.split_netloc("[::1]", 80) == ("::1", 80)


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:5000/v2/", "https://registry-1.docker.io/v2/library/busybox/manifests/latest",
    "https://auth.example/token?service=reg&scope=repository:a/b:pull",
    "http://h:1/v2/r/blobs/uploads/abc?_state=xyz&digest=sha256:00#frag", "https://h", "https://h?x=1",
    "HTTP://Host:80/p"])
def test_split_url_agrees_with_urlsplit(url):
    import urllib.parse
    from pyctr.image.registry import split_url
    p = urllib.parse.urlsplit(url)
    assert split_url(url) == (p.scheme, p.netloc, (p.path or "/") + ("?" + p.query if p.query else ""))
