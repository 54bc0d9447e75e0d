"""ttrpc frames: a 10-byte header (uint32 BE length, uint32 BE stream id, uint8 type, uint8 flags)
followed by the payload; a payload is at most 4 MiB (containerd/ttrpc PROTOCOL.md)."""
import struct

HEADER = struct.Struct(">IIBB")
MAX_MESSAGE = 4 << 20

TYPE_REQUEST = 1
TYPE_RESPONSE = 2
TYPE_DATA = 3

FLAG_REMOTE_CLOSED = 0x01
FLAG_REMOTE_OPEN = 0x02
FLAG_NO_DATA = 0x04

# google.rpc.Code values, as containerd's errdefs maps them back to its errors
OK = 0
CANCELLED = 1
UNKNOWN = 2
INVALID_ARGUMENT = 3
DEADLINE_EXCEEDED = 4
NOT_FOUND = 5
ALREADY_EXISTS = 6
RESOURCE_EXHAUSTED = 8
FAILED_PRECONDITION = 9
UNIMPLEMENTED = 12
INTERNAL = 13
UNAVAILABLE = 14


class TtrpcError(Exception):
    """An RPC that failed with a status code (raised by handlers, returned to clients)."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message

    def __str__(self):
        return f"ttrpc: {self.message} (code {self.code})"


class ConnectionClosed(Exception):
    pass


class OversizeFrame(Exception):
    def __init__(self, stream_id, length):
        super().__init__(f"message of {length} bytes exceeds the 4 MiB limit")
        self.stream_id = stream_id
        self.length = length


def _recv_exact(sock, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionClosed("connection closed")
        buf += chunk
    return bytes(buf)


def read_frame(sock):
    """-> (stream_id, type, flags, payload). An oversize payload is drained and reported as
    OversizeFrame so the connection stays usable (ttrpc answers that stream with an error)."""
    length, stream_id, mtype, flags = HEADER.unpack(_recv_exact(sock, HEADER.size))
    if length > MAX_MESSAGE:
        left = length
        while left:
            left -= len(_recv_exact(sock, min(left, 1 << 16)))
        raise OversizeFrame(stream_id, length)
    return stream_id, mtype, flags, _recv_exact(sock, length) if length else b""


def encode_frame(stream_id, mtype, flags, payload):
    if len(payload) > MAX_MESSAGE:
        raise TtrpcError(RESOURCE_EXHAUSTED, f"message of {len(payload)} bytes exceeds the 4 MiB limit")
    return HEADER.pack(len(payload), stream_id, mtype, flags) + payload
