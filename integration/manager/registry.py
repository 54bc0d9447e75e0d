"""Test helpers for pyctr: a real registry (Debian's docker-registry) on 127.0.0.1 with a temp
config and storage, an optional bearer-token server (http.server, RS256 JWTs signed by openssl with a
throwaway self-signed cert the registry trusts), a hand-made docker-archive (independent of pyctr)
for skopeo to push, and a fake registry whose blob downloads break midway (hostile_registry.py has
the registry that misbehaves in every other way)."""
import base64
import http.server
import json
import os
import socket
import subprocess
import threading
import time
import urllib.request

REGISTRY_BIN = "/usr/bin/docker-registry"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def need(tool):
    import shutil
    path = shutil.which(tool)
    assert path, f"{tool} is not installed (scripts/setup installs it): this test needs it"
    return path


def _b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenServer:
    """GET /token?service=&scope=... with basic auth USER:PASSWORD -> {"token": JWT}."""

    def __init__(self, workdir, user="alice", password="wonderland", service="pyctr-test",
                 issuer="pyctr-test-issuer"):
        self.user, self.password, self.service, self.issuer = user, password, service, issuer
        self.key = os.path.join(workdir, "token.key")
        self.cert = os.path.join(workdir, "token.crt")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", self.key,
                        "-out", self.cert, "-days", "2", "-subj", "/CN=pyctr-test-token"],
                       check=True, capture_output=True)
        der = subprocess.run(["openssl", "x509", "-in", self.cert, "-outform", "DER"], check=True,
                             capture_output=True).stdout
        self.x5c = base64.b64encode(der).decode()
        self.requests = []
        self.port = free_port()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                from urllib.parse import parse_qs, urlsplit
                q = parse_qs(urlsplit(self.path).query)
                auth = self.headers.get("Authorization", "")
                server.requests.append({"scope": q.get("scope", []), "service": q.get("service", []),
                                        "auth": auth.split(" ")[0]})
                expected = "Basic " + base64.b64encode(f"{server.user}:{server.password}".encode()).decode()
                if auth != expected:
                    self.send_response(401)
                    self.end_headers()
                    return
                body = json.dumps({"token": server.sign(q.get("scope", [])), "expires_in": 300}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def realm(self):
        return f"http://127.0.0.1:{self.port}/token"

    def sign(self, scopes):
        access = []
        for s in scopes:
            typ, name, actions = s.split(":") if s.count(":") == 2 else (None, None, None)
            if typ:
                access.append({"type": typ, "name": name, "actions": actions.split(",")})
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "x5c": [self.x5c]}
        claims = {"iss": self.issuer, "sub": self.user, "aud": self.service, "exp": now + 300,
                  "nbf": now - 10, "iat": now, "jti": os.urandom(8).hex(), "access": access}
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", self.key], input=signing_input.encode(),
                             check=True, capture_output=True).stdout
        return f"{signing_input}.{_b64url(sig)}"

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class Registry:
    def __init__(self, workdir, token=None, htpasswd=None):
        need("docker-registry")
        self.workdir = workdir
        self.storage = os.path.join(workdir, "storage")
        os.makedirs(self.storage, exist_ok=True)
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        cfg = ["version: 0.1", "log:", "  level: error", "storage:", "  filesystem:",
               f"    rootdirectory: {self.storage}", "  delete:", "    enabled: true", "http:",
               f"  addr: 127.0.0.1:{self.port}"]
        if token:
            cfg += ["auth:", "  token:", f"    realm: {token.realm}", f"    service: {token.service}",
                    f"    issuer: {token.issuer}", f"    rootcertbundle: {token.cert}"]
        if htpasswd:
            path = os.path.join(workdir, "htpasswd")
            bcrypt_htpasswd(path, *htpasswd)
            cfg += ["auth:", "  htpasswd:", "    realm: pyctr-test", f"    path: {path}"]
        self.config = os.path.join(workdir, "registry.yml")
        with open(self.config, "w") as f:
            f.write("\n".join(cfg) + "\n")
        self.log = open(os.path.join(workdir, "registry.log"), "wb")
        self.proc = subprocess.Popen([REGISTRY_BIN, "serve", self.config], stdout=self.log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://{self.host}/v2/", timeout=2)
                break
            except urllib.error.HTTPError:
                break  # 401 with token or htpasswd auth: it is up
            except OSError:
                assert self.proc.poll() is None, f"docker-registry exited: {open(self.log.name).read()}"
                assert time.monotonic() < deadline, "docker-registry did not come up in 60s"
                time.sleep(0.1)

    def blob_data(self, digest):
        hexpart = digest.split(":")[1]
        return os.path.join(self.storage, "docker/registry/v2/blobs/sha256", hexpart[:2], hexpart, "data")

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def docker_archive(path, rootfs_tar, tag, cmd, more_layers=()):
    """A docker-archive written by hand (not by pyctr): what `docker save` produces. more_layers:
    uncompressed layer tarballs (bytes) on top of the rootfs. Returns the top layer's diff id."""
    import hashlib
    import io
    import tarfile
    layers = [open(rootfs_tar, "rb").read()] + list(more_layers)
    diff_ids = ["sha256:" + hashlib.sha256(data).hexdigest() for data in layers]
    config = json.dumps({"architecture": "amd64", "os": "linux", "created": "2024-01-01T00:00:00Z",
                         "config": {"Cmd": cmd, "Env": ["PATH=/bin:/usr/bin", "FROM_ARCHIVE=1"],
                                    "WorkingDir": "/tmp"},
                         "rootfs": {"type": "layers", "diff_ids": diff_ids},
                         "history": [{"created": "2024-01-01T00:00:00Z", "created_by": "hand-made"}
                                     for _ in layers]}).encode()
    cfg_name = hashlib.sha256(config).hexdigest() + ".json"
    names = [f"l{i + 1}/layer.tar" for i in range(len(layers))]
    manifest = json.dumps([{"Config": cfg_name, "RepoTags": [tag], "Layers": names}]).encode()
    with tarfile.open(path, "w") as tf:
        for name, blob in [(cfg_name, config)] + list(zip(names, layers)) + [("manifest.json", manifest)]:
            info = tarfile.TarInfo(name)
            info.size = len(blob)
            tf.addfile(info, io.BytesIO(blob))
    return diff_ids[-1]


def layer_tar(*entries):
    """An uncompressed layer: entries are (name, bytes) files, (name, None) directories."""
    import io
    import tarfile
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, data in entries:
            info = tarfile.TarInfo(name)
            if data is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
            else:
                info.size, info.mode = len(data), 0o644
            tf.addfile(info, io.BytesIO(data or b""))
    return buf.getvalue()


class BrokenRegistry:
    """Serves one image whose layer blob stops after half its bytes: `stall` keeps the connection
    open (the client is killed meanwhile), otherwise the connection is closed."""

    def __init__(self, layer_gz, diff_id, stall):
        import hashlib
        self.layer = layer_gz
        self.layer_digest = "sha256:" + hashlib.sha256(layer_gz).hexdigest()
        self.config = json.dumps({"architecture": "amd64", "os": "linux",
                                  "rootfs": {"type": "layers", "diff_ids": [diff_id]}}).encode()
        self.config_digest = "sha256:" + hashlib.sha256(self.config).hexdigest()
        self.manifest = json.dumps({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": self.config_digest,
                       "size": len(self.config)},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": self.layer_digest,
                        "size": len(layer_gz)}]}).encode()
        self.release = threading.Event()
        self.port = free_port()
        me = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _send(self, body, ctype="application/octet-stream", length=None):
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body) if length is None else length))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                if self.path == "/v2/":
                    return self._send(b"{}", "application/json")
                if "/manifests/" in self.path:
                    return self._send(me.manifest, "application/vnd.oci.image.manifest.v1+json")
                if self.path.endswith(me.config_digest):
                    return self._send(me.config)
                if self.path.endswith(me.layer_digest):
                    half = me.layer[: len(me.layer) // 2]
                    self._send(half, length=len(me.layer))
                    self.wfile.flush()
                    if stall:
                        me.release.wait(120)
                    self.close_connection = True
                    return
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def bcrypt_htpasswd(path, user, password):
    """An htpasswd line as docker-registry wants it (bcrypt), from libc's crypt(3): libxcrypt does
    bcrypt, so no Python package is needed."""
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt
    hashed = crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=1 << 5))
    assert hashed and hashed.startswith("$2"), "libc's crypt(3) lacks bcrypt"
    with open(path, "w") as f:
        f.write(f"{user}:{hashed}\n")


def multiarch_layout(path, rootfs_tar):
    """An OCI layout (written by hand) tagged `multi`, an image index of two images: linux/amd64 with a
    gzip layer, linux/arm64/v8 with a zstd layer (the rootfs plus /arch). Returns {arch: diff id}."""
    import gzip
    import hashlib
    import io
    import tarfile
    import zstandard
    blobs = os.path.join(path, "blobs", "sha256")
    os.makedirs(blobs)

    def put(data, media_type, **extra):
        d = hashlib.sha256(data).hexdigest()
        with open(os.path.join(blobs, d), "wb") as f:
            f.write(data)
        return {"mediaType": media_type, "digest": "sha256:" + d, "size": len(data), **extra}

    raw = open(rootfs_tar, "rb").read()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        with tarfile.open(rootfs_tar) as src:
            for m in src:
                tf.addfile(m, src.extractfile(m) if m.isreg() else None)
        info = tarfile.TarInfo("arch")
        info.size = 6
        tf.addfile(info, io.BytesIO(b"arm64\n"))
    raw_arm = buf.getvalue()
    layers = {"amd64": (raw, gzip.compress(raw, 1), "application/vnd.oci.image.layer.v1.tar+gzip"),
              "arm64": (raw_arm, zstandard.ZstdCompressor().compress(raw_arm),
                        "application/vnd.oci.image.layer.v1.tar+zstd")}
    manifests, diff_ids = [], {}
    for arch, (plain, blob, mt) in layers.items():
        diff_ids[arch] = "sha256:" + hashlib.sha256(plain).hexdigest()
        plat = {"architecture": arch, "os": "linux", **({"variant": "v8"} if arch == "arm64" else {})}
        cfg = put(json.dumps({**plat, "config": {"Cmd": ["/bin/echo", arch]},
                              "rootfs": {"type": "layers", "diff_ids": [diff_ids[arch]]}}).encode(),
                  "application/vnd.oci.image.config.v1+json")
        man = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "config": cfg,
               "layers": [put(blob, mt)]}
        manifests.append(put(json.dumps(man).encode(), man["mediaType"], platform=plat))
    index = put(json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                            "manifests": manifests}).encode(), "application/vnd.oci.image.index.v1+json",
                annotations={"org.opencontainers.image.ref.name": "multi"})
    with open(os.path.join(path, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    with open(os.path.join(path, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [index]}, f)
    return diff_ids
