"""The pyctr CLI against hostile images from a real registry (docker-registry on 127.0.0.1, blobs and
manifests put by hand) and hostile archives: refused content leaves nothing, not even the store's
skeleton; AUFS-era layers and 0-byte layers load as in podman; a tree deeper than Python's
recursion limit goes through import, export and rmi; prune -a; a refused bundle leaves no DIR."""
import json
import os
import urllib.parse
import urllib.request

from integration.manager import hostile_archive as ha
from integration.manager.test_pyctr_podman import podman


def put_blob(registry, repo, data):
    req = urllib.request.Request(f"http://{registry.host}/v2/{repo}/blobs/uploads/", data=b"", method="POST")
    with urllib.request.urlopen(req, timeout=30) as resp:
        location = urllib.parse.urljoin(f"http://{registry.host}/", resp.headers["Location"])
    url = location + ("&" if "?" in location else "?") + urllib.parse.urlencode({"digest": ha.sha(data)})
    req = urllib.request.Request(url, data=data, method="PUT", headers={"Content-Type": "application/octet-stream"})
    urllib.request.urlopen(req, timeout=30).close()
    return ha.sha(data)


def put_image(registry, ref, config_bytes, layers, docker=False):
    """Push an image by hand (the registry checks blobs exist, never what a config says)."""
    import gzip
    repo, tag = ref.split(":")
    layer_mt = "application/vnd.docker.image.rootfs.diff.tar.gzip" if docker else "application/vnd.oci.image.layer.v1.tar"
    layers = [gzip.compress(x, mtime=0) for x in layers] if docker else layers
    manifest = {"schemaVersion": 2,
                "mediaType": "application/vnd.docker.distribution.manifest.v2+json" if docker
                else "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.docker.container.image.v1+json" if docker
                           else "application/vnd.oci.image.config.v1+json",
                           "digest": put_blob(registry, repo, config_bytes), "size": len(config_bytes)},
                "layers": [{"mediaType": layer_mt, "digest": put_blob(registry, repo, x), "size": len(x)}
                           for x in layers]}
    body = json.dumps(manifest).encode()
    req = urllib.request.Request(f"http://{registry.host}/v2/{repo}/manifests/{tag}", data=body, method="PUT",
                                 headers={"Content-Type": manifest["mediaType"]})
    urllib.request.urlopen(req, timeout=30).close()
    return f"{registry.host}/{ref}"


def test_pull_refuses_bad_configs_and_leaves_nothing(pyctr, registry):
    lay = ha.layer(("etc", "dir"), ("etc/f", "file"))
    bad_created = put_image(registry, "bad/created:1", ha.config([ha.sha(lay)], created=12345), [lay])
    bad_diff = put_image(registry, "bad/diffid:1", ha.config(["sha256:nothex"]), [lay])
    many = [ha.layer((f"f{i}", "file")) for i in range(126)]
    too_deep = put_image(registry, "bad/deep:1", ha.config([ha.sha(x) for x in many]), many)
    for args, why in ((["pull", "--insecure", bad_created], "created must be an RFC 3339 time"),
                      (["pull", "--insecure", "--no-unpack", bad_diff], "not a sha256 digest"),
                      (["pull", "--insecure", "--no-unpack", too_deep], "max depth exceeded")):
        cp = pyctr.fail(*args)
        assert why in cp.stderr, cp.stderr
        assert not os.path.exists(pyctr.root), os.listdir(pyctr.root)  # not even the skeleton
    good = put_image(registry, "good/one:1", ha.config([ha.sha(lay)]), [lay])
    pyctr.run("pull", "--insecure", good)
    # a refused pull into a store that has images leaves that store as it was
    before = sorted(os.listdir(os.path.join(pyctr.root, "content/blobs/sha256")))
    pyctr.fail("pull", "--insecure", bad_created)
    assert sorted(os.listdir(os.path.join(pyctr.root, "content/blobs/sha256"))) == before
    assert len(pyctr.layers()) == 1
    assert [i["Repository"] for i in json.loads(pyctr.run("images", "--format", "json").stdout)] == \
        [f"{registry.host}/good/one"]


def test_push_sends_the_manifest_of_the_tag_pushed(pyctr, registry):
    """One image in the registry as OCI under one tag and as Docker schema2 under another: pulled
    both ways, each tag pushes its own manifest."""
    lay = ha.layer(("f", "file"))
    cfg = ha.config([ha.sha(lay)])
    oci = put_image(registry, "two/ways:oci", cfg, [lay])
    docker = put_image(registry, "two/ways:docker", cfg, [lay], docker=True)
    pyctr.run("pull", "--insecure", oci)
    pyctr.run("pull", "--insecure", docker)
    for src, tag in ((oci, "oci-again"), (docker, "docker-again")):
        dest = f"{registry.host}/two/ways:{tag}"
        pyctr.run("push", "--insecure", src, dest)
        req = urllib.request.Request(f"http://{registry.host}/v2/two/ways/manifests/{tag}", headers={
            "Accept": "application/vnd.oci.image.manifest.v1+json,"
                      "application/vnd.docker.distribution.manifest.v2+json"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            got = json.loads(resp.read())
        assert ("docker" in got["mediaType"]) == (tag == "docker-again"), got


def test_aufs_and_empty_layers_load_as_in_podman(pyctr, tmp_path):
    aufs = ha.layer((".wh..wh.plnk", "dir"), (".wh..wh.plnk/7.8", "file", {"data": b"kept\n"}),
                    (".wh..wh.aufs", "file"), (".wh..wh.orph", "dir"), ("etc", "dir"),
                    ("etc/hard", "link", {"linkname": ".wh..wh.plnk/7.8"}), ("etc/.wh..wh..opq", "file"))
    path = tmp_path / "aufs.tar"
    path.write_bytes(ha.docker_archive([b"", aufs], tags=["localhost/aufs/image:1"]))
    podman(tmp_path, "load", "-i", str(path))
    podman(tmp_path, "rmi", "-a", "-f")
    assert "Loaded image: localhost/aufs/image:1" in pyctr.run("load", "-i", str(path)).stdout
    out = tmp_path / "export.tar"
    pyctr.run("export", "-o", str(out), "localhost/aufs/image:1")
    import tarfile
    with tarfile.open(out) as tf:
        names = sorted(m.name.rstrip("/") for m in tf)
        assert tf.extractfile("etc/hard").read() == b"kept\n"
    assert names == [".", "etc", "etc/hard"], names


def test_deep_tree_through_the_cli(pyctr, tmp_path):
    src = tmp_path / "deep.tar"
    src.write_bytes(ha.deep_tree(1200))
    pyctr.run("import", str(src), "deep/tree:1")
    pyctr.run("export", "-o", str(tmp_path / "out.tar"), "deep/tree:1")
    pyctr.run("rmi", "deep/tree:1")
    assert pyctr.layers() == [] and pyctr.overlay_dirs() == []
    pyctr.run("import", str(src), "deep/tree:2")  # the store still works
    pyctr.run("image", "prune", "-a")
    assert pyctr.run("images", "-q").stdout == "" and pyctr.layers() == []


def test_refused_bundle_leaves_no_dir_and_prune_all(pyctr, tmp_path):
    lay = ha.layer(("etc", "dir"))
    cfg = ha.config([ha.sha(lay)], config={"Env": ["PATH=/bin"]})  # neither Cmd nor Entrypoint
    path = tmp_path / "nocmd.tar"
    path.write_bytes(ha.docker_archive([lay], tags=["no/cmd:1"], config_bytes=cfg))
    pyctr.run("load", "-i", str(path))
    bundle = tmp_path / "b" / "bundle"
    cp = pyctr.fail("bundle", "no/cmd:1", str(bundle))
    assert "no command" in cp.stderr
    assert not (tmp_path / "b").exists()
    assert pyctr.run("mounts").stdout == ""
    out = pyctr.run("image", "prune", "-a").stdout
    assert "Untagged: no/cmd:1" in out and pyctr.run("images", "-q").stdout == "" and pyctr.layers() == []


def test_pull_checks_a_layer_the_store_already_has(pyctr, registry):
    """An image whose config claims the diff id of a layer the store has, with a blob of other
    content: refused, not taken as 'Already exists' for save and push to serve later."""
    real = ha.layer(("etc", "dir"), ("etc/motd", "file", {"data": b"genuine\n"}))
    planted = ha.layer(("etc", "dir"), ("etc/motd", "file", {"data": b"planted\n"}))
    pyctr.run("pull", "--insecure", put_image(registry, "real/one:1", ha.config([ha.sha(real)]), [real]))
    before = pyctr.listdir("content/blobs/sha256")
    evil = put_image(registry, "evil/one:1", ha.config([ha.sha(real)], created="2025-01-01T00:00:00Z"), [planted])
    cp = pyctr.fail("pull", "--insecure", evil)
    assert "diff id" in cp.stderr and "nothing was stored" in cp.stderr, cp.stderr
    assert pyctr.listdir("content/blobs/sha256") == before
    assert "evil" not in pyctr.run("images").stdout
