"""Streams: Docker's multiplexed framing (8-byte header: stream, 0, 0, 0, length uint32 BE), chunked
responses fed from a worker thread, and the hijacked connection of attach/exec (`Upgrade: tcp` ->
101, then the raw socket, relayed by a blocking thread against the monitor's attach socket)."""
import asyncio
import os
import select
import socket
import struct

STDIN, STDOUT, STDERR = 0, 1, 2


def frame(stream, data):
    return struct.pack(">BxxxL", stream, len(data)) + data


class ThreadWriter:
    """A file-like write() for code running in a worker thread, writing to an aiohttp response
    on the loop (with the loop's backpressure); a client gone raises ConnectionResetError there."""

    def __init__(self, loop, resp, stream=None):
        self.loop, self.resp, self.stream = loop, resp, stream

    def write(self, data):
        if isinstance(data, str):
            data = data.encode()
        if not data:
            return 0
        if self.stream is not None:
            data = frame(self.stream, data)
        asyncio.run_coroutine_threadsafe(self.resp.write(data), self.loop).result()
        return len(data)

    def flush(self):
        pass


async def chunked(request, content_type="application/json"):
    from aiohttp import web
    resp = web.StreamResponse(status=200, headers={"Content-Type": content_type})
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    return resp


def hijack(request, content_type):
    """Answer as dockerd does (101 UPGRADED when asked to upgrade, else 200 with a body to the end
    of the connection) and take the connection from aiohttp: a blocking socket of our own (a dup,
    so aiohttp's close leaves the connection up); the caller closes it."""
    transport = request.transport
    if transport is None or transport.is_closing():
        raise ConnectionResetError("the client left")
    transport.pause_reading()
    sock = transport.get_extra_info("socket")
    conn = socket.socket(fileno=os.dup(sock.fileno()))
    transport.abort()
    conn.setblocking(True)
    upgrade = request.headers.get("Upgrade", "").lower() == "tcp"
    head = ("HTTP/1.1 101 UPGRADED\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n" if upgrade else
            "HTTP/1.1 200 OK\r\nConnection: close\r\n")
    try:
        conn.sendall(f"{head}Content-Type: {content_type}\r\nApi-Version: 1.41\r\n\r\n".encode())
    except OSError:
        conn.close()
        raise ConnectionResetError("the client left") from None
    return conn


def raw_stream_type(tty):
    return "application/vnd.docker.raw-stream" if tty else "application/vnd.docker.multiplexed-stream"


def relay(conn, session, tty):
    """Between a hijacked client connection and an attach.Session (monitor packets: byte 0 names
    the stream, 2 stdout / 3 stderr). Returns when the container's output ends (True: the
    connection is closed so the client sees the end) or the client left (False: the session
    detaches, the container runs on)."""
    from pyctr.container.attach import STDERR as MON_ERR, STDOUT as MON_OUT
    streams = {MON_OUT: STDOUT, MON_ERR: STDERR}
    watch = [session.out, conn]
    try:
        while True:
            ready, _, _ = select.select(watch, [], [])
            if session.out in ready:
                pkt = session.read_output()
                if pkt is None:
                    return True
                stream = streams.get(pkt[0])
                if stream is not None and pkt[1]:
                    conn.sendall(pkt[1] if tty else frame(stream, pkt[1]))
            if conn in ready:
                data = conn.recv(65536)
                if not data:
                    # the client's write side ended (the docker CLI half-closes even without
                    # stdin): stdin's end; output goes on, and a send to a client that is gone
                    # altogether fails and detaches
                    if session.inp is not None:
                        session.inp.close()
                        session.inp = None
                    watch = [session.out]
                    continue
                if session.inp is not None:
                    for i in range(0, len(data), 32768):
                        session.inp.send(data[i:i + 32768])
    except OSError:
        return False
    finally:
        session.close()
        try:
            conn.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        conn.close()
