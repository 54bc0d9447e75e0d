"""Blob downloads (fetch.py) through the real registry client from a small HTTP server on
127.0.0.1 that sends blobs in paced pieces: a reader following a download gets exactly the blob's
bytes while they arrive, sees end-of-file only once the blob is filed, and gets the download's error
instead when the blob is corrupted, cut short or the download is cancelled; nothing half-written
is ever filed."""
import hashlib
import http.server
import os
import threading
import time

import pytest

from pyctr.errors import DigestMismatch, RegistryError
from pyctr.image import fetch
from pyctr.image.reference import parse
from pyctr.image.registry import Client
from pyctr.image.store import Store


class BlobServer:
    """GET /v2/ and /v2/<repo>/blobs/<digest>: the blob in `piece`-byte writes `pause` seconds
    apart; `cut` stops after that many bytes (the connection is closed), `gate` (an Event) holds
    the last piece back until it is set."""

    def __init__(self):
        self.blobs, self.piece, self.pause, self.cut, self.gate = {}, 65536, 0.0, None, None
        me = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_GET(self):
                if self.path == "/v2/":
                    return self._reply(b"{}")
                digest = self.path.rsplit("/", 1)[1]
                if digest not in me.blobs:
                    return self._reply(b"", 404)
                data = me.blobs[digest]
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                end = len(data) if me.cut is None else me.cut
                for i in range(0, end, me.piece):
                    if me.gate is not None and i + me.piece >= end:
                        me.gate.wait(30)
                    self.wfile.write(data[i:min(i + me.piece, end)])
                    self.wfile.flush()
                    time.sleep(me.pause)
                if me.cut is not None:
                    self.close_connection = True

            def _reply(self, body, code=200):
                self.send_response(code)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.host = f"127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def add(self, data):
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        self.blobs[digest] = data
        return {"digest": digest, "size": len(data)}

    def stop(self):
        if self.gate is not None:
            self.gate.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = BlobServer()
    yield s
    s.stop()


@pytest.fixture
def store(tmp_path):
    s = Store(str(tmp_path / "root")).lock()
    yield s
    s.unlock()


def client(server):
    return Client(parse(f"{server.host}/r/img:1"), insecure=True, timeout=20)


def run(download):
    t = threading.Thread(target=lambda: _swallow(download.run))
    t.start()
    return t


def _swallow(fn):
    try:
        fn()
    except Exception:
        pass  # the test looks at the download's error through wait() or its reader


def test_reader_follows_the_download_and_gets_every_byte(server, store):
    data = os.urandom(3 * (1 << 20) + 12345)  # more than one CHUNK, not a multiple of it
    server.piece, server.pause = 256 * 1024, 0.02
    desc = server.add(data)
    dl = fetch.Download(client(server), store, desc, "layer")
    t = run(dl)
    got, first_read_while_running = bytearray(), None
    with dl.reader() as r:
        while True:
            chunk = r.read(100000)
            if not chunk:
                break
            if first_read_while_running is None:
                first_read_while_running = not store.content.has(desc["digest"])
            got += chunk
        assert store.content.has(desc["digest"])  # end-of-file only once the blob is filed
    t.join()
    dl.wait()
    assert bytes(got) == data and first_read_while_running
    assert open(store.content.path(desc["digest"]), "rb").read() == data
    assert os.listdir(store.content.ingest) == []


def test_reader_of_a_blob_already_present_reads_the_file(server, store):
    data = b"present" * 1000
    desc = server.add(data)
    store.content.put(data, desc["digest"])
    dl = fetch.Download(client(server), store, desc)
    dl.run()
    with dl.reader() as r:
        assert r.read() == data


def test_corrupted_blob_the_reader_gets_the_mismatch_and_nothing_is_filed(server, store):
    data = os.urandom(3 << 20)  # the first CHUNK reaches the reader before the gate
    desc = server.add(data)
    server.blobs[desc["digest"]] = data[:1000] + bytes([data[1000] ^ 1]) + data[1001:]
    server.gate = threading.Event()
    dl = fetch.Download(client(server), store, desc, "layer")
    t = run(dl)
    with dl.reader() as r:
        first = r.read(4096)  # the bytes arrive before the verdict...
        assert len(first) == 4096
        server.gate.set()
        with pytest.raises(DigestMismatch, match="digest mismatch for layer"):
            while r.read(65536):  # ...but the end of the blob never comes: its error does
                pass
    t.join()
    with pytest.raises(DigestMismatch):
        dl.wait()
    assert not store.content.has(desc["digest"]) and os.listdir(store.content.ingest) == []


def test_blob_cut_short_is_an_interrupted_download(server, store):
    data = os.urandom(300000)
    desc = server.add(data)
    server.cut = 100000
    dl = fetch.Download(client(server), store, desc, "layer")
    t = run(dl)
    with dl.reader() as r, pytest.raises(RegistryError, match="interrupted"):
        while r.read(65536):
            pass
    t.join()
    assert not store.content.has(desc["digest"]) and os.listdir(store.content.ingest) == []


def test_more_bytes_than_the_descriptor_says_is_refused(server, store):
    data = os.urandom(200000)
    desc = server.add(data)
    with pytest.raises(DigestMismatch, match="more than 1000 bytes"):
        fetch.fetch(client(server), store, {"digest": desc["digest"], "size": 1000})
    assert not store.content.has(desc["digest"]) and os.listdir(store.content.ingest) == []


def test_cancel_stops_the_download_and_its_reader(server, store):
    data = os.urandom(4 << 20)
    server.piece, server.pause = 65536, 0.05  # ~3 s in all
    desc = server.add(data)
    cancel = threading.Event()
    dl = fetch.Download(client(server), store, desc, "layer", cancel=cancel)
    t = run(dl)
    with dl.reader() as r:
        assert r.read(1000)
        cancel.set()
        with pytest.raises(fetch.Cancelled):
            while r.read(65536):
                pass
    t.join(10)
    assert not t.is_alive()
    assert not store.content.has(desc["digest"]) and os.listdir(store.content.ingest) == []
