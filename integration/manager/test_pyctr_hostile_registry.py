"""pyctr's registry client against a registry that misbehaves on purpose (hostile_registry.py):
credentials stay with the registry they are for, redirects stay on http(s) without a downgrade,
digests are checked before they reach a request, bodies and downloads are bounded by limits and
declared sizes, a stalled registry times out, one SIGINT ends a pull, 5xx are retried, and plain
HTTP registries on loopback are reached as Docker reaches them."""
import json
import os
import signal
import subprocess
import time

import pytest

from integration.helpers.runtime import describe
from integration.manager.hostile_registry import OCI_INDEX, OCI_MANIFEST, HostileRegistry
from integration.manager.registry import need

MiB = 1 << 20


@pytest.fixture
def hostile(tmp_path):
    made = []

    def make(**kw):
        r = HostileRegistry(str(tmp_path), **kw)
        made.append(r)
        return r
    yield make
    for r in made:
        r.stop()


def insecure(reg):
    """--insecure for a plain-HTTP registry (what loopback registries get by default now, spelled
    out so that each test tries its own point and not that default); a TLS one is verified
    against its own certificate (SSL_CERT_FILE, see tls_trusted)."""
    return () if reg.tls else ("--insecure",)


def tls_trusted(pyctr, reg):
    pyctr.extra_env["SSL_CERT_FILE"] = reg.cert


def login(pyctr, reg):
    pyctr.run("login", *insecure(reg), "-u", reg.user, "--password-stdin", reg.host, input=reg.password + "\n")


def no_store_leftovers(pyctr):
    ingest = os.path.join(pyctr.root, "content/ingest")
    assert not os.path.isdir(ingest) or os.listdir(ingest) == []
    assert pyctr.layers() == [] and pyctr.overlay_dirs() == []


# --- credentials -------------------------------------------------------------------------------------


@pytest.mark.parametrize("auth", ["basic", "bearer"])
def test_redirect_target_asking_for_a_token_gets_no_credentials(pyctr, hostile, auth):
    """containerd's CVE-2020-15157: a blob redirected to another host whose 401 names a token realm
    on that host; the registry's credentials must go to neither."""
    reg = hostile(auth=auth)
    reg.add_image("1")

    @reg.rule
    def _(req):
        if req.server == "other":
            if req.path.startswith("/token"):
                return req.json(200, {"token": "stolen"})
            return req.reply(401, headers=[("WWW-Authenticate",
                                            f'Bearer realm="http://{reg.other_host}/token",service="evil"')])
        if "/blobs/" in req.path:
            digest = req.path.rsplit("/", 1)[1]
            return not reg._authorized(req) or \
                req.reply(307, headers=[("Location", f"http://{reg.other_host}/data/{digest}")])
        return False
    login(pyctr, reg)
    cp = pyctr.fail("pull", *insecure(reg), f"{reg.host}/r/img:1")
    assert "not sent there" in cp.stderr and reg.other_host in cp.stderr, cp.stderr
    on_other = reg.requests("other")
    assert on_other, reg.seen
    assert all("Authorization" not in s.headers for s in on_other), f"credentials leaked: {on_other}"
    assert not reg.requests("other", "/token"), "the foreign realm was asked for a token"
    no_store_leftovers(pyctr)
    # skopeo (containers/image) sends nothing there either
    reg.seen.clear()
    sk = subprocess.run([need("skopeo"), "copy", "--src-tls-verify=false", "--src-creds",
                         f"{reg.user}:{reg.password}", f"docker://{reg.host}/r/img:1",
                         f"dir:{pyctr.root}-skopeo"], capture_output=True, text=True, timeout=120)
    assert sk.returncode != 0, sk.stdout
    assert reg.requests("other") and all("Authorization" not in s.headers for s in reg.requests("other"))


@pytest.mark.parametrize("target", ["gopher", "http-downgrade", "file"])
def test_redirects_only_to_http_s_and_never_down_to_http(pyctr, hostile, target):
    reg = hostile(tls=True, auth="basic")
    tls_trusted(pyctr, reg)
    reg.add_image("1")
    locations = {"gopher": f"gopher://{reg.host}/1/v2/r/img/manifests/1",
                 "http-downgrade": f"http://{reg.host}/v2/r/img/manifests/1",
                 "file": "file:///etc/shadow"}

    @reg.rule
    def _(req):
        if "/manifests/" in req.path and req.scheme == "https":
            return not reg._authorized(req) or req.reply(302, headers=[("Location", locations[target])])
        return False
    login(pyctr, reg)
    cp = pyctr.fail("pull", *insecure(reg), f"{reg.host}/r/img:1")
    assert "refusing to follow a redirect" in cp.stderr, cp.stderr
    assert ("from https down to plain http" if target == "http-downgrade" else "not an http(s) URL") in cp.stderr
    plain = [s for s in reg.seen if s.scheme == "http"]
    assert all("Authorization" not in s.headers for s in plain), f"credentials sent in clear: {plain}"
    assert not [s for s in plain if "/manifests/" in s.path], reg.seen
    assert any(s.scheme == "https" and s.headers.get("Authorization") == reg.basic for s in reg.seen)


def test_https_registry_naming_a_plain_http_realm_gets_no_credentials(pyctr, hostile):
    reg = hostile(tls=True, auth="bearer")
    tls_trusted(pyctr, reg)
    reg.add_image("1")

    @reg.rule
    def _(req):
        if req.server == "registry" and req.path.startswith("/v2/") and \
                req.headers.get("Authorization") != f"Bearer {reg.token}":
            return req.reply(401, headers=[("WWW-Authenticate", f'Bearer realm="http://{reg.host}/token"')])
        return False
    login_seen = len(reg.seen)
    pyctr.run("login", "-u", reg.user, "--password-stdin", reg.host, check=False, input=reg.password + "\n")
    auth = {"auths": {reg.host: {"auth": reg.basic.split()[1]}}}
    with open(pyctr.authfile, "w") as f:
        json.dump(auth, f)
    cp = pyctr.fail("pull", f"{reg.host}/r/img:1")
    assert "plain-http token realm" in cp.stderr, cp.stderr
    plain = [s for s in reg.seen[login_seen:] if s.scheme == "http"]
    assert all("Authorization" not in s.headers for s in plain), f"credentials sent in clear: {plain}"


def test_https_registry_redirecting_within_https_keeps_working(pyctr, hostile):
    reg = hostile(tls=True, auth="basic")
    tls_trusted(pyctr, reg)
    mdigest, _ = reg.add_image("1")

    @reg.rule
    def _(req):
        if req.path.endswith("/manifests/1"):
            return not reg._authorized(req) or \
                req.reply(307, headers=[("Location", f"/v2/r/img/manifests/{mdigest}")])
        return False
    login(pyctr, reg)
    pyctr.run("pull", "-q", *insecure(reg), f"{reg.host}/r/img:1")
    assert all(s.scheme == "https" for s in reg.seen if s.path.startswith("/v2/r/"))


HOSTILE_DIGESTS = [
    "sha256:" + "a" * 64 + "\r\nX-Injected: 1",
    "sha256:" + "a" * 63 + "\n",
    "sha256:../../../../etc/passwd",
    "sha256:" + "A" * 64,
    "sha256:" + "a" * 65,
    "md5:" + "a" * 32,
    "sha256:" + "a" * 32 + " HTTP/1.1",
]


def test_malformed_digests_in_an_index_never_reach_a_request(pyctr, hostile):
    reg = hostile()
    for i, bad in enumerate(HOSTILE_DIGESTS):
        index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": bad, "size": 100,
             "platform": {"os": "linux", "architecture": "amd64"}}]}
        reg.put_manifest(f"bad{i}", json.dumps(index).encode(), OCI_INDEX)
    for i, bad in enumerate(HOSTILE_DIGESTS):
        cp = pyctr.fail("pull", *insecure(reg), "--platform", "linux/amd64", f"{reg.host}/r/img:bad{i}")
        assert "digest" in cp.stderr and "manifest in the index" in cp.stderr, cp.stderr
    asked = [s.path for s in reg.seen if "/manifests/" in s.path]
    assert sorted(asked) == sorted(f"/v2/r/img/manifests/bad{i}" for i in range(len(HOSTILE_DIGESTS))), asked
    assert not any("X-Injected" in s.headers for s in reg.seen)
    no_store_leftovers(pyctr)


@pytest.mark.parametrize("where", ["config", "layer"])
def test_malformed_digests_in_a_manifest_never_reach_a_request(pyctr, hostile, where):
    reg = hostile()

    def edit(m):
        desc = m["config"] if where == "config" else m["layers"][0]
        desc["digest"] = desc["digest"] + "\r\nX-Injected: 1"
    reg.add_image("1", edit=edit)
    cp = pyctr.fail("pull", *insecure(reg), f"{reg.host}/r/img:1")
    assert "malformed digest" in cp.stderr, cp.stderr
    assert not [s for s in reg.seen if "/blobs/" in s.path]
    no_store_leftovers(pyctr)


# --- bounded memory, disk and time ------------------------------------------------------------------


@pytest.mark.parametrize("what", ["401-body", "token-body", "500-body", "manifest", "chunked-manifest",
                                  "redirect-body"])
def test_huge_bodies_are_not_read(pyctr, hostile, what):
    """512 MiB bodies, generated as they are sent: pyctr gives up after a small, bounded read."""
    reg = hostile(auth="bearer" if what == "token-body" else None)
    reg.add_image("1")
    big = 512 * MiB

    @reg.rule
    def _(req):
        if what == "token-body" and req.path.startswith("/token"):
            return req.stream(200, big, what, ctype="application/json", prefix=b'{"token": "')
        if "/manifests/" not in req.path or what == "token-body":
            return False
        if what == "401-body":
            return req.stream(401, big, what, headers=[("WWW-Authenticate", 'Basic realm="x"')])
        if what == "500-body":
            return req.stream(500, big, what, headers=[("Retry-After", "0")])
        if what == "redirect-body":
            return req.stream(302, big, what, headers=[("Location", "/elsewhere")])
        return req.stream(200, big if what == "manifest" else None, what, ctype=OCI_MANIFEST,
                          chunked=what == "chunked-manifest", prefix=b'{"schemaVersion": 2, "x": "')
    if what == "401-body":
        login(pyctr, reg)  # so that the 401 is answered with credentials, not refused up front
    start = time.monotonic()
    cp = pyctr.fail("pull", *insecure(reg), f"{reg.host}/r/img:1", timeout=60)
    took = time.monotonic() - start
    sent = reg.sent.get(what, 0)
    assert sent < 48 * MiB, f"pyctr read {sent} bytes of a {what}\n{describe(cp)}"
    assert took < 20, f"{took:.1f}s"
    if what in ("manifest", "chunked-manifest"):
        assert "4194304" in cp.stderr and "limit of containerd and skopeo" in cp.stderr
    no_store_leftovers(pyctr)


def test_huge_manifest_refused_like_skopeo(pyctr, hostile):
    reg = hostile()

    @reg.rule
    def _(req):
        if "/manifests/" in req.path:
            return req.stream(200, 5 * MiB, "manifest", ctype=OCI_MANIFEST, prefix=b'{"schemaVersion": 2, "x": "')
        return False
    cp = pyctr.fail("pull", *insecure(reg), f"{reg.host}/r/img:1")
    assert "more than the 4194304 allowed" in cp.stderr, cp.stderr  # declared: refused unread
    sk = subprocess.run([need("skopeo"), "inspect", "--raw", "--tls-verify=false", f"docker://{reg.host}/r/img:1"],
                        capture_output=True, text=True, timeout=120)
    assert sk.returncode != 0 and "exceeded maximum allowed size" in sk.stderr, sk.stderr


@pytest.mark.parametrize("size", ["missing", -1, "12", True, 1.5])
def test_layer_descriptor_needs_a_size(pyctr, hostile, size):
    reg = hostile()

    def edit(m):
        if size == "missing":
            del m["layers"][0]["size"]
        else:
            m["layers"][0]["size"] = size
    reg.add_image("1", edit=edit)
    cp = pyctr.fail("pull", *insecure(reg), f"{reg.host}/r/img:1")
    assert "size" in cp.stderr and "non-negative integer" in cp.stderr, cp.stderr
    assert not [s for s in reg.seen if "/blobs/" in s.path]
    no_store_leftovers(pyctr)


def test_config_over_4_mib_is_refused_before_download(pyctr, hostile):
    reg = hostile()

    def edit(m):
        m["config"]["size"] = 4 * MiB + 1
    reg.add_image("1", edit=edit)
    cp = pyctr.fail("pull", *insecure(reg), f"{reg.host}/r/img:1")
    assert "over the 4 MiB allowed" in cp.stderr, cp.stderr
    assert not [s for s in reg.seen if "/blobs/" in s.path]


def test_blob_longer_than_declared_is_cut_at_its_size(pyctr, hostile):
    reg = hostile()
    mdigest, manifest = reg.add_image("1")
    layer = manifest["layers"][0]["digest"]

    @reg.rule
    def _(req):
        if req.path.endswith(layer):
            return req.stream(200, 2 << 30, "layer", prefix=reg.blobs[layer])
        return False
    cp = pyctr.fail("pull", *insecure(reg), f"{reg.host}/r/img:1")
    assert "digest mismatch" in cp.stderr and f"more than {manifest['layers'][0]['size']} bytes" in cp.stderr
    assert reg.sent["layer"] < 48 * MiB
    no_store_leftovers(pyctr)


@pytest.fixture
def small_fs(tmp_path):
    """A 16 MiB tmpfs for the store, unmounted at the end whatever happens."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m,mode=0700", "tmpfs", str(mnt)], check=True)
    yield str(mnt)
    subprocess.run(["umount", "-l", str(mnt)], check=True)


def test_blobs_larger_than_the_free_space_are_refused_up_front(pyctr, hostile, small_fs):
    pyctr.root = os.path.join(small_fs, "root")
    reg = hostile()
    _, manifest = reg.add_image("1", files=[("a", b"a"), ("b", b"b")])
    big = manifest["layers"][1]["digest"]
    reg.put_manifest("1", json.dumps(dict(manifest, layers=[manifest["layers"][0],
                                                            dict(manifest["layers"][1], size=64 * MiB)])).encode(),
                     OCI_MANIFEST)

    @reg.rule
    def _(req):
        if req.path.endswith(big):
            return req.stream(200, 64 * MiB, "big")
        return False
    cp = pyctr.fail("pull", *insecure(reg), f"{reg.host}/r/img:1")
    assert "not enough free space" in cp.stderr and "(16.8 MB) are free" in cp.stderr, cp.stderr
    assert not [s for s in reg.seen if "/blobs/" in s.path]
    no_store_leftovers(pyctr)
    st = os.statvfs(small_fs)
    assert st.f_bfree * st.f_frsize > 15 * MiB


def stalling(reg, n_layers=2):
    """An image whose layers each send half of their bytes and then stall."""
    _, manifest = reg.add_image("1", files=[(f"f{i}", os.urandom(256 * 1024)) for i in range(n_layers)])
    layers = {d["digest"] for d in manifest["layers"]}

    @reg.rule
    def _(req):
        digest = req.path.rsplit("/", 1)[-1]
        if digest in layers:
            data = reg.blobs[digest]
            return req.stream(200, len(data), digest, prefix=data, stall_after=len(data) // 2,
                              release=reg.release)
        return False
    return manifest


def test_stalled_registry_times_out_naming_the_url(pyctr, hostile):
    reg = hostile()
    stalling(reg, 1)
    pyctr.extra_env["PYCTR_REGISTRY_TIMEOUT"] = "1"
    start = time.monotonic()
    cp = pyctr.fail("pull", *insecure(reg), f"{reg.host}/r/img:1", timeout=30)
    assert time.monotonic() - start < 10
    assert "timed out" in cp.stderr and f"//{reg.host}/v2/r/img/blobs/sha256:" in cp.stderr, cp.stderr
    no_store_leftovers(pyctr)
    pyctr.extra_env["PYCTR_REGISTRY_TIMEOUT"] = "soon"
    assert "PYCTR_REGISTRY_TIMEOUT='soon'" in pyctr.fail("pull", *insecure(reg), f"{reg.host}/r/img:1").stderr


@pytest.mark.parametrize("flags", [(), ("--no-unpack",)], ids=["pull", "no-unpack"])
def test_one_sigint_stops_a_stalled_pull_and_cleans_up(pyctr, hostile, flags):
    reg = hostile()
    stalling(reg, 3)
    proc = pyctr.popen("pull", *insecure(reg), *flags, f"{reg.host}/r/img:1")
    try:
        ingest = os.path.join(pyctr.root, "content/ingest")
        deadline = time.monotonic() + 30
        while not (os.path.isdir(ingest) and len(os.listdir(ingest)) >= 2):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the pull never started writing"
            time.sleep(0.05)
        time.sleep(0.3)  # every download is blocked on the stalled registry by now
        proc.send_signal(signal.SIGINT)
        start = time.monotonic()
        out, err = proc.communicate(timeout=10)
        took = time.monotonic() - start
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130, err
    assert took < 3, f"{took:.1f}s after one SIGINT"
    assert b"Traceback" not in err and err.decode().strip().splitlines()[-1] == "Error: interrupted", err
    no_store_leftovers(pyctr)
    assert pyctr.listdir("tmp") == []


def test_5xx_and_429_are_retried_with_backoff(pyctr, hostile):
    reg = hostile(auth="bearer")
    _, manifest = reg.add_image("1")
    layer, config = manifest["layers"][0]["digest"], manifest["config"]["digest"]
    # "drop": the connection is closed without an answer (a reset on the way)
    answers = {"/token": [429], "/manifests/1": [503], layer: [500, 502], config: ["drop", "drop"]}

    @reg.rule
    def _(req):
        for key, codes in answers.items():
            if key in req.path and codes:
                code = codes.pop(0)
                if code == "drop":
                    req.h.close_connection = True
                    return True
                return req.json(code, {"errors": [{"code": "UNAVAILABLE", "message": "try again"}]},
                                [("Retry-After", "0")] if code in (429, 503) else [])
        return False
    login(pyctr, reg)
    pyctr.run("pull", "-q", *insecure(reg), f"{reg.host}/r/img:1")
    assert len(reg.requests("registry", layer)) == 3 and len(reg.requests("registry", config)) == 3
    # an idempotent request that keeps failing gives up after a few tries, naming the URL
    answers[layer] = [500] * 10
    start = time.monotonic()
    other = type(pyctr)(pyctr.root + "-2", pyctr.authfile)
    cp = other.fail("pull", *insecure(reg), f"{reg.host}/r/img:1")
    assert time.monotonic() - start < 15
    assert f"GET https://{reg.host}/v2/r/img/blobs/{layer}" in cp.stderr or \
        f"GET http://{reg.host}/v2/r/img/blobs/{layer}" in cp.stderr, cp.stderr
    assert "HTTP 500" in cp.stderr and "UNAVAILABLE: try again" in cp.stderr
    assert 10 - len(answers[layer]) == 4


@pytest.mark.parametrize("framing", ["content-length", "until-close"])
def test_a_blob_whose_connection_breaks_is_resumed_with_a_range_request(pyctr, hostile, framing):
    reg = hostile()
    _, manifest = reg.add_image("1", files=[("big", os.urandom(3 * MiB))])
    layer = manifest["layers"][0]["digest"]
    data = reg.blobs[layer]
    cuts = [len(data) // 3, len(data) // 2]

    @reg.rule
    def _(req):
        if not req.path.endswith(layer):
            return False
        start = int(req.headers.get("Range", "bytes=0-")[6:].rstrip("-"))
        end = cuts.pop(0) if cuts else len(data)
        h = req.h
        h.send_response(206 if start else 200)
        if start:
            h.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        if framing == "content-length":
            h.send_header("Content-Length", str(len(data) - start))
        h.end_headers()
        h.wfile.write(data[start:end])
        h.close_connection = True
        return True
    out = pyctr.run("pull", "-q", "--insecure", f"{reg.host}/r/img:1").stdout.strip()
    assert out == manifest["config"]["digest"]
    ranges = [s.headers.get("Range") for s in reg.requests("registry", layer)]
    assert ranges == [None, f"bytes={len(data) // 3}-", f"bytes={len(data) // 2}-"], ranges


# --- errors and data --------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["field", "content-type"])
def test_unknown_manifest_media_type_is_refused(pyctr, hostile, how):
    reg = hostile()
    weird = "application/vnd.example.not-a-manifest+json"
    if how == "field":
        reg.add_image("1", media_type=weird)
    else:
        _, manifest = reg.add_image("1", edit=lambda m: m.pop("mediaType"))
        reg.put_manifest("1", json.dumps(manifest).encode(), weird)
    cp = pyctr.fail("pull", *insecure(reg), f"{reg.host}/r/img:1")
    assert f"unsupported manifest media type {weird!r}" in cp.stderr, cp.stderr
    no_store_leftovers(pyctr)


def test_manifest_without_any_type_is_still_recognised(pyctr, hostile):
    reg = hostile()
    _, manifest = reg.add_image("1", edit=lambda m: m.pop("mediaType"))
    reg.put_manifest("1", json.dumps(manifest).encode(), "application/json")
    assert pyctr.run("pull", "-q", *insecure(reg), f"{reg.host}/r/img:1").stdout.strip() == manifest["config"]["digest"]


def test_connection_refused_names_the_url_without_errno(pyctr):
    from integration.manager.registry import free_port
    port = free_port()
    cp = pyctr.fail("pull", "--insecure", f"127.0.0.1:{port}/r/img:1")
    assert f"http://127.0.0.1:{port}/v2/" in cp.stderr and "refused" in cp.stderr.lower(), cp.stderr
    assert "Errno" not in cp.stderr and "fd=" not in cp.stderr, cp.stderr


@pytest.mark.parametrize("name", ["127.0.0.1", "localhost"])
def test_plain_http_registry_on_loopback_needs_no_flag(pyctr, hostile, name):
    reg = hostile()
    _, manifest = reg.add_image("1")
    host = reg.host.replace("127.0.0.1", name)
    assert pyctr.run("pull", "-q", f"{host}/r/img:1").stdout.strip() == manifest["config"]["digest"]


def test_tls_registry_on_loopback_is_reached_over_https(pyctr, hostile):
    reg = hostile(tls=True)
    reg.add_image("1")
    pyctr.run("pull", "-q", f"{reg.host}/r/img:1")  # not verified: loopback is insecure by default
    assert {s.scheme for s in reg.seen} == {"https"}


def non_loopback_address():
    addr = subprocess.run(["hostname", "-I"], capture_output=True, text=True).stdout.split()
    v4 = [a for a in addr if "." in a and not a.startswith("127.")]
    assert v4, "this test needs a non-loopback IPv4 address on the machine"
    return v4[0]


def test_tls_registry_elsewhere_is_verified_unless_insecure(pyctr, hostile):
    reg = hostile(tls=True, main_addr=non_loopback_address())
    reg.add_image("1")
    cp = pyctr.fail("pull", f"{reg.host}/r/img:1")
    assert "TLS certificate verification failed" in cp.stderr and f"https://{reg.host}/v2/" in cp.stderr, cp.stderr
    # --insecure: https without certificate checks, as Docker and podman
    pyctr.run("pull", "-q", "--insecure", f"{reg.host}/r/img:1")
    assert {s.scheme for s in reg.seen} == {"https"}


def test_plain_http_registry_elsewhere_gets_a_hint(pyctr, hostile):
    reg = hostile(main_addr=non_loopback_address())
    reg.add_image("1")
    cp = pyctr.fail("pull", f"{reg.host}/r/img:1")
    assert "the registry answered plain HTTP" in cp.stderr and "--insecure" in cp.stderr, cp.stderr
    assert "Errno" not in cp.stderr
    pyctr.run("pull", "-q", "--insecure", f"{reg.host}/r/img:1")
