"""pyctr against a real registry (docker-registry on 127.0.0.1), with skopeo on the other side,
and bundles of pulled images run by pyrunc and by runc."""
import gzip
import hashlib
import json
import os
import signal
import subprocess
import time

import pytest

from integration.helpers.runtime import DEFAULT_RUNTIME, describe, execute
from integration.manager.hostile_registry import OCI_MANIFEST, HostileRegistry
from integration.manager.registry import BrokenRegistry, docker_archive, multiarch_layout, need

RUNTIMES = {"pyrunc": DEFAULT_RUNTIME, "runc": "/usr/sbin/runc"}


def run_bundle(runtime, bundle, tmp_path, cid):
    """`<runtime> run` the bundle in the foreground; always deleted afterwards."""
    assert os.access(runtime, os.X_OK), f"{runtime} is not installed"
    root = str(tmp_path / f"rt-{os.path.basename(runtime)}")
    try:
        return execute([runtime, "--root", root, "run", "--bundle", bundle, cid], timeout=120)
    finally:
        execute([runtime, "--root", root, "delete", "--force", cid])


def skopeo(*args):
    cp = execute([need("skopeo"), *args], timeout=300)
    assert cp.returncode == 0, describe(cp)
    return cp


@pytest.mark.parametrize("runtime", sorted(RUNTIMES))
def test_skopeo_push_then_pyctr_pull_and_bundle_runs(pyctr, registry, rootfs_tar, tmp_path, runtime):
    archive = str(tmp_path / "bb.tar")
    diff_id = docker_archive(archive, rootfs_tar, "bb:1",
                             ["/bin/sh", "-c", "echo cwd=$(pwd) $FROM_ARCHIVE; cat /etc/motd; id -u"])
    skopeo("copy", "--dest-tls-verify=false", f"docker-archive:{archive}", f"docker://{registry.host}/test/bb:1")
    cp = pyctr.run("pull", "--insecure", f"{registry.host}/test/bb:1")
    image_id = cp.stdout.split()[-1]
    inspect = json.loads(pyctr.run("inspect", f"{registry.host}/test/bb:1").stdout)[0]
    assert inspect["Id"] == image_id and inspect["RootFS"]["Layers"] == [diff_id]
    assert f"{registry.host}/test/bb " in pyctr.run("images").stdout
    bundle = str(tmp_path / "bundle")
    pyctr.run("bundle", f"{registry.host}/test/bb:1", bundle)
    try:
        cp = run_bundle(RUNTIMES[runtime], bundle, tmp_path, f"pyctr-{runtime}")
        assert cp.returncode == 0, describe(cp)
        assert cp.stdout.split("\n")[:3] == ["cwd=/tmp 1", "made for pyctr tests", "0"], describe(cp)
    finally:
        pyctr.run("umount", bundle)
    assert not os.path.ismount(os.path.join(bundle, "rootfs"))


def test_pyctr_push_then_skopeo_pull(pyctr, registry, rootfs_tar, tmp_path):
    pyctr.run("import", "-c", "CMD [\"/bin/true\"]", rootfs_tar, f"{registry.host}/mine/bb:v1")
    image_id = json.loads(pyctr.run("inspect", f"{registry.host}/mine/bb:v1").stdout)[0]["Id"]
    cp = pyctr.run("push", "--insecure", f"{registry.host}/mine/bb:v1")
    assert "Pushed" in cp.stderr
    # a second push finds every blob there already
    assert "Layer already exists" in pyctr.run("push", "--insecure", f"{registry.host}/mine/bb:v1").stderr
    out = str(tmp_path / "oci")
    skopeo("copy", "--src-tls-verify=false", f"docker://{registry.host}/mine/bb:v1", f"oci:{out}:v1")
    index = json.load(open(os.path.join(out, "index.json")))
    manifest = json.load(open(os.path.join(out, "blobs/sha256", index["manifests"][0]["digest"][7:])))
    assert manifest["config"]["digest"] == image_id
    layer = open(os.path.join(out, "blobs/sha256", manifest["layers"][0]["digest"][7:]), "rb").read()
    if layer[:2] == b"\x1f\x8b":  # skopeo may compress on the way to an OCI layout
        layer = gzip.decompress(layer)
    assert layer == open(rootfs_tar, "rb").read()
    # cross-repository mount within the registry
    pyctr.run("pull", "--insecure", f"{registry.host}/mine/bb:v1")
    pyctr.run("tag", f"{registry.host}/mine/bb:v1", f"{registry.host}/other/bb:v2")
    cp = pyctr.run("push", "--insecure", f"{registry.host}/other/bb:v2")
    assert "Mounted from mine/bb" in cp.stderr, cp.stderr


def test_bearer_token_flow(pyctr, token_registry, rootfs_tar, tmp_path):
    reg = token_registry
    pyctr.run("import", rootfs_tar, f"{reg.host}/secure/bb:1")
    cp = pyctr.fail("push", "--insecure", f"{reg.host}/secure/bb:1")
    assert "token request" in cp.stderr and "401" in cp.stderr, cp.stderr
    cp = pyctr.fail("login", "--insecure", "-u", "alice", "-p", "wrong", reg.host)
    assert "401" in cp.stderr
    pyctr.run("login", "--insecure", "-u", "alice", "--password-stdin", reg.host, input="wonderland\n")
    assert json.load(open(pyctr.authfile))["auths"][reg.host]["auth"]
    pyctr.run("push", "--insecure", f"{reg.host}/secure/bb:1")
    assert any("repository:secure/bb:pull,push" in r["scope"] and r["service"] == ["pyctr-test"]
               and r["auth"] == "Basic" for r in reg.token.requests)
    fresh = type(pyctr)(str(tmp_path / "root2"), pyctr.authfile)
    cp = fresh.run("pull", "--insecure", f"{reg.host}/secure/bb:1")
    assert any(r["scope"] == ["repository:secure/bb:pull"] for r in reg.token.requests)
    # skopeo with the same credentials sees what pyctr pushed
    skopeo("inspect", "--tls-verify=false", "--creds", "alice:wonderland", f"docker://{reg.host}/secure/bb:1")
    pyctr.run("logout", reg.host)
    assert pyctr.fail("pull", "--insecure", f"{reg.host}/secure/bb:1")


def test_corrupted_blob_detected(pyctr, registry, rootfs_tar, tmp_path):
    archive = str(tmp_path / "bb.tar")
    docker_archive(archive, rootfs_tar, "bb:1", ["/bin/true"])
    skopeo("copy", "--dest-tls-verify=false", f"docker-archive:{archive}", f"docker://{registry.host}/c/bb:1")
    raw = json.loads(skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{registry.host}/c/bb:1").stdout)
    layer = raw["layers"][0]["digest"]
    path = registry.blob_data(layer)
    data = bytearray(open(path, "rb").read())
    data[len(data) // 2] ^= 0xFF  # same size, different bytes
    open(path, "wb").write(bytes(data))
    cp = pyctr.fail("pull", "--insecure", f"{registry.host}/c/bb:1")
    assert f"digest mismatch for layer {layer}" in cp.stderr, cp.stderr
    assert pyctr.layers() == [] and pyctr.overlay_dirs() == []
    assert not os.path.exists(os.path.join(pyctr.root, "content/blobs/sha256", layer[7:]))
    assert pyctr.listdir("content/ingest") == []
    assert "c/bb" not in pyctr.run("images").stdout


@pytest.mark.parametrize("flags", [(), ("--no-unpack",)], ids=["pull", "no-unpack"])
@pytest.mark.parametrize("how", ["connection-closed", "killed"])
def test_interrupted_pull_leaves_no_half_written_layer(pyctr, rootfs_tar, tmp_path, how, flags):
    raw = open(rootfs_tar, "rb").read()
    layer_gz = gzip.compress(raw, 1) + os.urandom(0)
    fake = BrokenRegistry(layer_gz, "sha256:" + hashlib.sha256(raw).hexdigest(), stall=(how == "killed"))
    ref = f"127.0.0.1:{fake.port}/broken/bb:1"
    try:
        if how == "connection-closed":
            cp = pyctr.fail("pull", "--insecure", *flags, ref)
            assert "interrupted" in cp.stderr, cp.stderr
        else:
            proc = pyctr.popen("pull", "--insecure", *flags, ref)
            ingest = os.path.join(pyctr.root, "content/ingest")
            deadline = time.monotonic() + 120
            while not (os.path.isdir(ingest) and os.listdir(ingest)):
                assert proc.poll() is None, proc.communicate()
                assert time.monotonic() < deadline, "the pull never started writing"
                time.sleep(0.05)
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    finally:
        fake.stop()
    assert pyctr.layers() == []
    assert not os.path.exists(os.path.join(pyctr.root, "content/blobs/sha256", fake.layer_digest[7:]))
    assert "broken/bb" not in pyctr.run("images").stdout
    # the next command that takes the store lock clears what the killed one left
    pyctr.run("image", "prune")
    assert pyctr.listdir("content/ingest") == []
    assert pyctr.overlay_dirs() == [] and pyctr.listdir("tmp") == []


def test_basic_auth_htpasswd_registry(pyctr, htpasswd_registry, rootfs_tar, tmp_path):
    reg = htpasswd_registry
    pyctr.run("import", rootfs_tar, f"{reg.host}/basic/bb:1")
    cp = pyctr.fail("push", "--insecure", f"{reg.host}/basic/bb:1")
    assert "requires a login" in cp.stderr, cp.stderr
    assert "401" in pyctr.fail("login", "--insecure", "-u", "bob", "-p", "wrong", reg.host).stderr
    pyctr.run("login", "--insecure", "-u", "bob", "--password-stdin", reg.host, input="builder\n")
    pyctr.run("push", "--insecure", f"{reg.host}/basic/bb:1")
    skopeo("inspect", "--tls-verify=false", "--creds", "bob:builder", f"docker://{reg.host}/basic/bb:1")
    fresh = type(pyctr)(str(tmp_path / "root2"), pyctr.authfile)
    image_id = fresh.run("pull", "--insecure", "-q", f"{reg.host}/basic/bb:1").stdout.strip()
    assert image_id == json.loads(pyctr.run("inspect", f"{reg.host}/basic/bb:1").stdout)[0]["Id"]
    pyctr.run("logout", reg.host)
    assert "requires a login" in type(pyctr)(str(tmp_path / "root3"), pyctr.authfile).fail(
        "pull", "--insecure", f"{reg.host}/basic/bb:1").stderr


@pytest.mark.parametrize("scheme", ["basic", "bearer"])
def test_redirect_to_another_host_gets_no_authorization(pyctr, rootfs_tar, scheme, tmp_path):
    """A registry that wants auth and answers every blob GET with a 307 to another host:port
    (127.0.0.2), as registries backed by S3 or a CDN do; the manifest takes a same-host redirect
    first."""
    raw = open(rootfs_tar, "rb").read()
    layer = gzip.compress(raw, 1)
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {
        "type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(raw).hexdigest()]}}).encode()
    fake = HostileRegistry(str(tmp_path), auth=scheme)
    try:
        manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                               "config": fake.descriptor(config, "application/vnd.oci.image.config.v1+json"),
                               "layers": [fake.descriptor(layer, "application/vnd.oci.image.layer.v1.tar+gzip")]})
        fake.put_manifest(None, manifest.encode(), OCI_MANIFEST)
        cfg_digest, layer_digest = sorted(fake.blobs, key=lambda d: fake.blobs[d] != config)

        @fake.rule
        def _(req):
            if req.server != "registry" or not req.path.startswith("/v2/r/"):
                return False
            if not fake._authorized(req):
                return True
            if req.path.endswith("/manifests/1"):
                return req.reply(307, headers=[("Location", "/v2/r/img/moved-manifest")])
            if req.path == "/v2/r/img/moved-manifest":
                return req.reply(200, manifest.encode(), ctype=OCI_MANIFEST)
            if "/blobs/" in req.path:
                digest = req.path.rsplit("/", 1)[-1]
                return req.reply(307, headers=[("Location", f"http://{fake.other_host}/data/{digest}")])
            return False
        pyctr.run("login", "--insecure", "-u", "alice", "--password-stdin", fake.host, input="wonderland\n")
        image_id = pyctr.run("pull", "--insecure", "-q", f"{fake.host}/r/img:1").stdout.strip()
    finally:
        fake.stop()
    assert image_id == cfg_digest
    want = fake.basic if scheme == "basic" else f"Bearer {fake.token}"
    on_blob_host = fake.requests("other")
    assert sorted(s.path.rsplit("/", 1)[1] for s in on_blob_host) == sorted(fake.blobs), fake.seen
    assert all("Authorization" not in s.headers for s in on_blob_host), \
        f"credentials leaked to {fake.other_host}: {on_blob_host}"
    # on the registry itself (the same-host manifest redirect included) the credentials were sent
    for path in ("/v2/r/img/moved-manifest", f"/v2/r/img/blobs/{layer_digest}"):
        assert any(s.server == "registry" and s.path == path and s.headers.get("Authorization") == want
                   for s in fake.seen), fake.seen


def test_index_platform_selection_and_zstd_layer(pyctr, registry, rootfs_tar, tmp_path):
    layout = str(tmp_path / "multi")
    diff_ids = multiarch_layout(layout, rootfs_tar)
    skopeo("copy", "--multi-arch", "all", "--dest-tls-verify=false", f"oci:{layout}:multi",
           f"docker://{registry.host}/m/img:1")
    ref = f"{registry.host}/m/img:1"
    pyctr.run("pull", "--insecure", ref)
    got = json.loads(pyctr.run("inspect", ref).stdout)[0]
    assert got["Architecture"] == "amd64" and got["RootFS"]["Layers"] == [diff_ids["amd64"]], got
    arm = type(pyctr)(str(tmp_path / "root-arm"), pyctr.authfile)
    arm.run("pull", "--insecure", "--platform", "linux/arm64/v8", ref)  # the zstd layer
    got = json.loads(arm.run("inspect", ref).stdout)[0]
    assert got["Architecture"] == "arm64" and got["RootFS"]["Layers"] == [diff_ids["arm64"]], got
    assert "no image for platform linux/s390x" in arm.fail("pull", "--insecure", "--platform", "linux/s390x",
                                                              ref).stderr
