"""`pyctr pull --no-unpack` against a real registry (docker-registry on 127.0.0.1, images pushed by
skopeo): blobs, config and tags only; the layers unpacked the first time something needs them
(bundle, export) and the image usable meanwhile (images, inspect, save, push, rmi, prune). Also a
full pull that extracts while downloading: a corrupted blob whose bytes extract cleanly is still
refused before its layer is committed."""
import hashlib
import json
import os
import tarfile

from integration.helpers.runtime import DEFAULT_RUNTIME, describe
from integration.manager.registry import docker_archive, layer_tar
from integration.manager.test_pyctr_registry import run_bundle, skopeo


def blobs(pyctr):
    d = os.path.join(pyctr.root, "content/blobs/sha256")
    return sorted("sha256:" + n for n in os.listdir(d)) if os.path.isdir(d) else []


def push_two_layer_image(registry, rootfs_tar, tmp_path, name):
    """busybox, then a layer that adds /etc/second and deletes /etc/motd (a whiteout)."""
    top = layer_tar(("etc", None), ("etc/second", b"from layer two\n"), ("etc/.wh.motd", b""))
    archive = str(tmp_path / "two.tar")
    docker_archive(archive, rootfs_tar, "two:1",
                   ["/bin/sh", "-c", "cat /etc/second; test -e /etc/motd && echo motd || echo no-motd"],
                   [top])
    ref = f"{registry.host}/{name}"
    skopeo("copy", "--dest-tls-verify=false", f"docker-archive:{archive}", f"docker://{ref}")
    raw = json.loads(skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{ref}").stdout)
    return ref, raw


def test_pull_no_unpack_then_bundle_runs(pyctr, registry, rootfs_tar, tmp_path):
    ref, manifest = push_two_layer_image(registry, rootfs_tar, tmp_path, "nu/two:1")
    image_id = pyctr.run("pull", "--insecure", "-q", "--no-unpack", ref).stdout.strip()
    assert image_id == manifest["config"]["digest"]
    layer_digests = [d["digest"] for d in manifest["layers"]]
    assert set(layer_digests) <= set(blobs(pyctr))
    assert pyctr.layers() == [] and pyctr.overlay_dirs() == []  # nothing unpacked
    got = json.loads(pyctr.run("inspect", ref).stdout)[0]
    assert got["Unpacked"] is False and got["GraphDriver"]["Data"]["UpperDir"] == ""
    packed = json.loads(pyctr.run("images", "--format", "json").stdout)[0]
    assert packed["Size"] == sum(d["size"] for d in manifest["layers"])  # the blobs' size, as containerd

    bundle = str(tmp_path / "bundle")
    pyctr.run("bundle", ref, bundle)  # the first use unpacks
    try:
        assert len(pyctr.layers()) == 2
        cp = run_bundle(DEFAULT_RUNTIME, bundle, tmp_path, "pyctr-nounpack")
        assert cp.returncode == 0, describe(cp)
        assert cp.stdout.split("\n")[:2] == ["from layer two", "no-motd"], describe(cp)
    finally:
        pyctr.run("umount", bundle)
    got = json.loads(pyctr.run("inspect", ref).stdout)[0]
    assert got["Unpacked"] is True and got["GraphDriver"]["Data"]["UpperDir"]
    unpacked = json.loads(pyctr.run("images", "--format", "json").stdout)[0]
    assert unpacked["Size"] > packed["Size"]  # now the uncompressed size, as Docker
    # a full pull of the same image finds everything there
    assert "Already exists" in pyctr.run("pull", "--insecure", ref).stderr
    assert len(pyctr.layers()) == 2


def test_no_unpack_image_is_saved_and_pushed_without_unpacking(pyctr, registry, rootfs_tar, tmp_path):
    ref, manifest = push_two_layer_image(registry, rootfs_tar, tmp_path, "nu/save:1")
    image_id = pyctr.run("pull", "--insecure", "-q", "--no-unpack", ref).stdout.strip()
    archive = str(tmp_path / "saved.tar")
    pyctr.run("save", "-o", archive, ref)
    dest = f"{registry.host}/nu/pushed:2"
    pyctr.run("tag", ref, dest)
    pyctr.run("push", "--insecure", dest)
    assert pyctr.layers() == []  # neither needed the layers unpacked
    pushed = json.loads(skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{dest}").stdout)
    assert [d["digest"] for d in pushed["layers"]] == [d["digest"] for d in manifest["layers"]]
    assert pushed["config"]["digest"] == image_id
    fresh = type(pyctr)(str(tmp_path / "root2"), pyctr.authfile)
    fresh.run("load", "-i", archive)
    assert json.loads(fresh.run("inspect", ref).stdout)[0]["Id"] == image_id


def test_no_unpack_corrupted_blob_refused(pyctr, registry, rootfs_tar, tmp_path):
    ref, manifest = push_two_layer_image(registry, rootfs_tar, tmp_path, "nu/bad:1")
    layer = manifest["layers"][0]["digest"]
    path = registry.blob_data(layer)
    data = bytearray(open(path, "rb").read())
    data[len(data) // 2] ^= 0xFF  # same size, different bytes
    open(path, "wb").write(bytes(data))
    cp = pyctr.fail("pull", "--insecure", "--no-unpack", ref)
    assert f"digest mismatch for layer {layer}" in cp.stderr, cp.stderr
    assert layer not in blobs(pyctr)
    assert pyctr.listdir("content/ingest") == []
    assert "nu/bad" not in pyctr.run("images").stdout and pyctr.layers() == []


def test_rmi_and_prune_of_an_image_unpacked_later(pyctr, registry, rootfs_tar, tmp_path):
    ref, manifest = push_two_layer_image(registry, rootfs_tar, tmp_path, "nu/gone:1")
    image_id = pyctr.run("pull", "--insecure", "-q", "--no-unpack", ref).stdout.strip()
    out = str(tmp_path / "fs.tar")
    pyctr.run("export", "-o", out, ref)  # the first use unpacks
    with tarfile.open(out) as tf:
        names = set(tf.getnames())
    assert {"bin/busybox", "etc/second"} <= names and "etc/motd" not in names
    assert len(pyctr.layers()) == 2
    assert pyctr.run("image", "prune").stdout == ""  # tagged: its layers and blobs stay
    assert len(pyctr.layers()) == 2 and image_id in blobs(pyctr)
    removed = pyctr.run("rmi", ref).stdout
    assert removed.split("\n")[:2] == [f"Untagged: {ref}", f"Deleted: {image_id}"]
    assert removed.count("Deleted: sha256:") == 3, removed  # the image, then its two layers, as docker rmi
    assert pyctr.run("image", "prune").stdout == ""
    assert pyctr.layers() == [] and pyctr.overlay_dirs() == [] and blobs(pyctr) == []
    # and one never unpacked goes the same way
    pyctr.run("pull", "--insecure", "-q", "--no-unpack", ref)
    pyctr.run("rmi", ref)
    pyctr.run("image", "prune")
    assert blobs(pyctr) == [] and pyctr.layers() == []


def test_full_pull_refuses_a_corrupted_blob_that_extracts_cleanly(pyctr, registry, tmp_path):
    """An uncompressed layer with one byte of a file's content changed: a valid tar, extracted
    to the end while it downloads, but the blob digest does not match: nothing is committed."""
    data = layer_tar(("bin", None), ("bin/tool", b"A" * 300000), ("etc", None), ("etc/conf", b"x=1\n"))
    layer_file = tmp_path / "layer.tar"
    layer_file.write_bytes(data)
    ref = f"{registry.host}/nu/plain:1"
    pyctr.run("import", str(layer_file), ref)
    pyctr.run("push", "--insecure", ref)  # pyctr keeps an uncompressed layer as it is
    layer = "sha256:" + hashlib.sha256(data).hexdigest()
    path = registry.blob_data(layer)
    assert open(path, "rb").read() == data
    corrupted = data.replace(b"A" * 1000, b"A" * 999 + b"B", 1)
    assert len(corrupted) == len(data)
    open(path, "wb").write(corrupted)
    fresh = type(pyctr)(str(tmp_path / "root2"), pyctr.authfile)
    cp = fresh.fail("pull", "--insecure", ref)
    assert f"digest mismatch for layer {layer}" in cp.stderr, cp.stderr
    assert fresh.layers() == [] and fresh.overlay_dirs() == []
    assert fresh.listdir("tmp") == []  # the staged extraction was removed
    assert layer not in blobs(fresh) and fresh.listdir("content/ingest") == []
