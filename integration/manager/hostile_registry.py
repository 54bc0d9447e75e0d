"""A registry that misbehaves on purpose, for pyctr's registry client tests.

`HostileRegistry` serves the distribution API on 127.0.0.1 (optionally TLS and plain HTTP on the
same port, told apart by the first byte, so a redirect can change only the scheme) and a second
server on 127.0.0.2, "another host", that a redirect can point at. Both record every request
(`seen`). By default it serves the images added with `add_image` (real gzip tar layers, a config
with their diff ids, an OCI manifest), with no auth, basic auth or a bearer token from its own
/token. A test changes any answer with `rule(fn)`: fn(request) returns True when it answered.
Bodies of any size are generated lazily (`stream`), and how many bytes of them were actually sent
before the client hung up is counted, so a test can tell whether the client read them.
"""
import base64
import gzip
import hashlib
import http.server
import io
import json
import os
import socket
import ssl
import subprocess
import tarfile
import threading
from collections import namedtuple

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"

Seen = namedtuple("Seen", "server scheme method path headers")


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def layer_tar(name, content):
    """(gzip blob, diff id) of a layer holding one file."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        info = tarfile.TarInfo(name)
        info.size = len(content)
        tf.addfile(info, io.BytesIO(content))
    raw = buf.getvalue()
    return gzip.compress(raw, 1), sha256(raw)


def self_signed_cert(workdir):
    """(cert, key) for 127.0.0.1, made by openssl."""
    cert, key = os.path.join(workdir, "tls.crt"), os.path.join(workdir, "tls.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    return cert, key


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr, handler, tls_context=None):
        self.tls_context = tls_context
        super().__init__(addr, handler)

    def get_request(self):
        conn, addr = super().get_request()
        if self.tls_context is not None:
            conn.settimeout(10)
            try:
                first = conn.recv(1, socket.MSG_PEEK)
            except OSError:
                first = b""
            if first == b"\x16":  # a TLS handshake record: this connection speaks https
                try:
                    conn = self.tls_context.wrap_socket(conn, server_side=True)
                except (OSError, ssl.SSLError):
                    pass  # the handler then fails on it and the connection is dropped
            conn.settimeout(None)
        return conn, addr


class Request:
    """What a rule sees: the request and ways to answer it."""

    def __init__(self, handler, server):
        self.h, self.server = handler, server
        self.method, self.path, self.headers = handler.command, handler.path, handler.headers
        self.scheme = "https" if isinstance(handler.connection, ssl.SSLSocket) else "http"

    def reply(self, code, body=b"", headers=(), ctype=None):
        h = self.h
        h.send_response(code)
        if ctype:
            h.send_header("Content-Type", ctype)
        for k, v in headers:
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if self.method != "HEAD":
            h.wfile.write(body)
        return True

    def json(self, code, doc, headers=()):
        return self.reply(code, json.dumps(doc).encode(), headers, "application/json")

    def stream(self, code, total, key, headers=(), ctype="application/octet-stream", chunked=False,
               prefix=b"", stall_after=None, release=None):
        """total bytes (prefix, then 'x's; None: until the client hangs up), generated as they are
        sent; the bytes sent are added up in registry.sent[key] (over every request). stall_after: stop sending after
        that many bytes until release (an Event) is set, keeping the connection open."""
        h, reg = self.h, self.h.registry
        h.send_response(code)
        h.send_header("Content-Type", ctype)
        for k, v in headers:
            h.send_header(k, v)
        if chunked or total is None:
            h.send_header("Transfer-Encoding", "chunked")
        else:
            h.send_header("Content-Length", str(total))
        h.end_headers()
        h.close_connection = True
        piece = b"x" * 65536
        sent = 0
        reg.sent.setdefault(key, 0)
        try:
            while total is None or sent < total:
                if stall_after is not None and sent >= stall_after:
                    release.wait(120)
                    return True
                data = (prefix[sent:] + piece) if sent < len(prefix) else piece
                n = len(data) if total is None else min(len(data), total - sent)
                if stall_after is not None:
                    n = min(n, stall_after - sent)
                if chunked or total is None:
                    h.wfile.write(b"%x\r\n" % n + data[:n] + b"\r\n")
                else:
                    h.wfile.write(data[:n])
                sent += n
                reg.sent[key] += n
            if chunked or total is None:
                h.wfile.write(b"0\r\n\r\n")
        except OSError:
            pass  # the client hung up: what it got is in sent
        return True


class HostileRegistry:
    def __init__(self, workdir, tls=False, auth=None, user="alice", password="wonderland",
                 main_addr="127.0.0.1"):
        """auth: None, "basic" or "bearer" (tokens from /token on this registry, for user:password)."""
        self.auth, self.user, self.password = auth, user, password
        self.basic = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        self.token = "tok-" + os.urandom(8).hex()
        self.blobs, self.manifests = {}, {}  # digest -> bytes; tag or digest -> (bytes, media type)
        self.rules = []
        self.seen = []
        self.sent = {}
        self.release = threading.Event()  # lets stalled answers go on (set at stop)
        context, self.tls, self.cert = None, tls, None
        if tls:
            self.cert, key = self_signed_cert(workdir)
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(self.cert, key)
        self.main = self._serve(main_addr, "registry", context)
        self.other = self._serve("127.0.0.2", "other", None)
        self.host = "%s:%d" % self.main.server_address[:2]
        self.other_host = "127.0.0.2:%d" % self.other.server_address[1]

    def _serve(self, addr, name, context):
        me = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            registry = me

            def log_message(self, *a):
                pass

            def handle_one_request(self):
                try:
                    super().handle_one_request()
                except (OSError, ssl.SSLError):
                    self.close_connection = True

            def _any(self):
                req = Request(self, name)
                me.seen.append(Seen(name, req.scheme, self.command, self.path, dict(self.headers)))
                for rule in list(me.rules):
                    if rule(req):
                        return
                (me._registry if name == "registry" else me._other)(req)

            do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _any

        server = _Server((addr, 0), Handler, context)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return server

    def stop(self):
        self.release.set()
        for s in (self.main, self.other):
            s.shutdown()
            s.server_close()

    # --- content -----------------------------------------------------------------------------------

    def rule(self, fn):
        self.rules.append(fn)
        return fn

    def add_blob(self, data):
        d = sha256(data)
        self.blobs[d] = data
        return d

    def descriptor(self, data, media_type):
        return {"mediaType": media_type, "digest": self.add_blob(data), "size": len(data)}

    def add_image(self, tag, files=(("hello", b"hello from a hostile registry\n"),), media_type=OCI_MANIFEST,
                  edit=None):
        """An image of one layer per (name, content); edit(manifest dict) may change the manifest
        before it is stored. Returns (manifest digest, manifest dict)."""
        layers, diff_ids = [], []
        for name, content in files:
            blob, diff_id = layer_tar(name, content)
            layers.append(self.descriptor(blob, OCI_LAYER_GZIP))
            diff_ids.append(diff_id)
        config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/hello"]},
                             "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
        manifest = {"schemaVersion": 2, "mediaType": media_type,
                    "config": self.descriptor(config, OCI_CONFIG), "layers": layers}
        if edit:
            edit(manifest)
        return self.put_manifest(tag, json.dumps(manifest).encode(), manifest.get("mediaType") or media_type), manifest

    def put_manifest(self, tag, body, media_type):
        d = sha256(body)
        self.manifests[d] = (body, media_type)
        if tag:
            self.manifests[tag] = (body, media_type)
        return d

    def requests(self, server=None, path_part=""):
        return [s for s in self.seen if (server is None or s.server == server) and path_part in s.path]

    # --- default answers ---------------------------------------------------------------------------

    def _authorized(self, req):
        if self.auth is None:
            return True
        want = self.basic if self.auth == "basic" else f"Bearer {self.token}"
        if req.headers.get("Authorization") == want:
            return True
        challenge = ('Basic realm="hostile"' if self.auth == "basic" else
                     f'Bearer realm="{req.scheme}://{self.host}/token",service="hostile"')
        req.json(401, {"errors": [{"code": "UNAUTHORIZED", "message": "log in"}]},
                 [("WWW-Authenticate", challenge)])
        return False

    def _registry(self, req):
        path = req.path.split("?", 1)[0]
        if path == "/token":
            if req.headers.get("Authorization") != self.basic:
                return req.reply(401)
            return req.json(200, {"token": self.token})
        if not self._authorized(req):
            return
        if path == "/v2/":
            return req.json(200, {})
        if "/manifests/" in path:
            ref = path.rsplit("/", 1)[1]
            if ref in self.manifests:
                body, mt = self.manifests[ref]
                return req.reply(200, body, [("Docker-Content-Digest", sha256(body))], mt)
            return req.json(404, {"errors": [{"code": "MANIFEST_UNKNOWN", "message": ref}]})
        if "/blobs/" in path:
            digest = path.rsplit("/", 1)[1]
            if digest in self.blobs:
                return req.reply(200, self.blobs[digest], ctype="application/octet-stream")
        return req.json(404, {"errors": [{"code": "NOT_FOUND", "message": path}]})

    def _other(self, req):
        digest = req.path.split("?", 1)[0].rsplit("/", 1)[1]
        if digest in self.blobs:
            return req.reply(200, self.blobs[digest], ctype="application/octet-stream")
        return req.reply(404)
