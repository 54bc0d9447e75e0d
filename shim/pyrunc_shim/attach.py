"""conmon's attach socket: SOCK_SEQPACKET; every output packet is one byte naming the stream
(2 stdout, 3 stderr) followed by the data; input packets are raw stdin bytes. Many clients can
join and leave at any time; a client that cannot keep up loses packets, never stalls the container."""
import os
import socket
import threading

STDOUT = 2
STDERR = 3
_PACKET = 8192


class AttachServer:
    def __init__(self, path, on_input, on_stdin_close=None):
        self.path = path
        self._on_input = on_input
        self._clients = set()
        self._lock = threading.Lock()
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        old = os.umask(0o077)
        try:
            self._sock.bind(path)
        finally:
            os.umask(old)
        self._sock.listen(16)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self._sock.accept()
            except OSError:
                return
            with self._lock:
                self._clients.add(c)
            threading.Thread(target=self._client, args=(c,), daemon=True).start()

    def _client(self, c):
        try:
            while True:
                data = c.recv(_PACKET)
                if not data:
                    break
                self._on_input(data)
        except OSError:
            pass
        with self._lock:
            self._clients.discard(c)
        c.close()

    def broadcast(self, stream, data):
        with self._lock:
            clients = list(self._clients)
        if not clients:
            return
        for i in range(0, len(data), _PACKET - 1):
            pkt = bytes((stream,)) + data[i:i + _PACKET - 1]
            for c in clients:
                try:
                    c.send(pkt, socket.MSG_DONTWAIT)
                except BlockingIOError:
                    pass
                except OSError:
                    with self._lock:
                        self._clients.discard(c)

    def close(self):
        try:
            self._sock.close()
        finally:
            with self._lock:
                for c in self._clients:
                    c.close()
                self._clients.clear()
            try:
                os.unlink(self.path)
            except OSError:
                pass
