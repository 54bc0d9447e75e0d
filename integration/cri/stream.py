"""The client side of the CRI streaming server's exec over a websocket (RFC 6455) with Kubernetes'
`v4.channel.k8s.io` protocol: every binary message starts with its channel (0 stdin, 1 stdout,
2 stderr, 3 the final status as JSON, 4 resize). Only what a test needs: connect to the URL the
Exec call returned, send stdin, read until the server closes, bounded in size and time."""
import base64
import json
import os
import socket
import struct
import time
import urllib.parse

MAX_OUTPUT = 1 << 20
PROTOCOL = "v4.channel.k8s.io"


class StreamError(Exception):
    pass


def _recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise StreamError("connection closed inside a frame")
        buf += chunk
    return buf


def _send_frame(sock, payload, opcode=0x2):
    mask = os.urandom(4)  # a client's frames are masked
    head = bytes([0x80 | opcode])
    n = len(payload)
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 1 << 16:
        head += bytes([0x80 | 126]) + struct.pack("!H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", n)
    sock.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))


def _read_frame(sock):
    b0, b1 = _recv_exact(sock, 2)
    n = b1 & 0x7F
    if n == 126:
        n = struct.unpack("!H", _recv_exact(sock, 2))[0]
    elif n == 127:
        n = struct.unpack("!Q", _recv_exact(sock, 8))[0]
    if n > MAX_OUTPUT:
        raise StreamError(f"frame of {n} bytes")
    mask = _recv_exact(sock, 4) if b1 & 0x80 else None
    data = _recv_exact(sock, n)
    if mask:
        data = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
    return b0 & 0x0F, data


def exec_stream(url, stdin=b"", timeout=30):
    """-> (stdout, stderr, status dict) of the exec behind url."""
    u = urllib.parse.urlsplit(url)
    sock = socket.create_connection((u.hostname, u.port), timeout=timeout)
    try:
        key = base64.b64encode(os.urandom(16)).decode()
        sock.sendall((f"GET {u.path}?{u.query} HTTP/1.1\r\nHost: {u.netloc}\r\nUpgrade: websocket\r\n"
                      f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                      f"Sec-WebSocket-Protocol: {PROTOCOL}\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(1)
            if not chunk or len(head) > 16384:
                raise StreamError(f"no websocket handshake: {head[:200]!r}")
            head += chunk
        if not head.startswith(b"HTTP/1.1 101"):
            raise StreamError(f"handshake refused: {head.splitlines()[0]!r}")
        if stdin:
            _send_frame(sock, b"\x00" + stdin)
        out = {1: b"", 2: b"", 3: b""}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            opcode, data = _read_frame(sock)
            if opcode == 0x8:  # close
                break
            if opcode == 0x9:  # ping
                _send_frame(sock, data, opcode=0xA)
                continue
            if data and data[0] in out:
                out[data[0]] += data[1:]
                if sum(map(len, out.values())) > MAX_OUTPUT:
                    raise StreamError("more output than a test expects")
        else:
            raise StreamError(f"exec stream not closed after {timeout}s")
        return out[1], out[2], json.loads(out[3] or b"{}")
    finally:
        sock.close()
