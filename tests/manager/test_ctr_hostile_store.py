"""The store is never poisoned: hostile archives and configs are refused with a clear error and leave
nothing, stored records that are bad anyway break nothing else, what is served is verified, and a
tree too deep for recursion is handled like any other. Needs root (layers keep owners, xattrs)."""
import io
import json
import os
import tarfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from integration.manager import hostile_archive as ha
from pyctr.errors import PyctrError
from pyctr.image.archive import export, import_tarball, load, save
from pyctr.image.reference import parse
from pyctr.image.store import Store

FEW = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def contents(root):
    """What a store holds: images, tags, layers, overlay dirs, blobs (all empty if no store)."""
    s = Store(root)
    return {"images": s.image_ids(), "tags": s.repositories(), "layers": s.layerdb.all(),
            "overlay": s.overlay.ids(), "blobs": s.content.digests()}


def assert_nothing_stored(root):
    assert all(not v for v in contents(root).values()), contents(root)
    assert not os.path.exists(root) or not os.listdir(os.path.join(root, "tmp"))


def load_bytes(root, data, tmp_path, name="in.tar"):
    path = tmp_path / name
    path.write_bytes(data)
    with Store(root) as s:
        return load(s, str(path))


def refused(root, data, tmp_path, match=None):
    with pytest.raises(PyctrError, match=match) as e:
        load_bytes(root, data, tmp_path)
    assert_nothing_stored(root)
    return str(e.value)


# --- configs -------------------------------------------------------------------------------------

_NOT_STR = st.one_of(st.integers(), st.floats(allow_nan=False), st.booleans(), st.lists(st.integers(), max_size=2),
                     st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))
_BAD_TIME = st.one_of(_NOT_STR, st.text(max_size=20).filter(lambda t: "T" not in t), st.just("2024-01-02 03:04:05"))
_BAD_DIGEST = st.one_of(_NOT_STR, st.text(max_size=70), st.just("sha256:" + "A" * 64), st.just("sha512:" + "a" * 128),
                        st.just("sha256:" + "a" * 63 + "\n"))


@st.composite
def bad_configs(draw):
    """A config that Docker or podman would refuse to decode: one field of the wrong type or form."""
    diff_id = ha.sha(ha.layer(("f", "file")))
    kind = draw(st.sampled_from(["created", "arch", "os", "diff_id", "rootfs", "rootfs_type", "history",
                                 "history_entry", "history_created", "env", "cmd", "labels", "json", "toplevel"]))
    if kind == "created":
        return ha.config([diff_id], created=draw(_BAD_TIME))
    if kind in ("arch", "os"):
        return ha.config([diff_id], **{"architecture" if kind == "arch" else "os": draw(_NOT_STR)})
    if kind == "diff_id":
        return ha.config([draw(_BAD_DIGEST)])
    if kind == "rootfs":
        return ha.config([diff_id], rootfs=draw(st.one_of(_NOT_STR.filter(lambda v: not isinstance(v, dict)),
                                                          st.just({"type": "layers", "diff_ids": "x"}))))
    if kind == "rootfs_type":
        return ha.config([diff_id], rootfs={"type": draw(st.sampled_from(["", "layer", 5])), "diff_ids": [diff_id]})
    if kind == "history":
        return ha.config([diff_id], history=draw(_NOT_STR.filter(lambda v: not isinstance(v, list))))
    if kind == "history_entry":
        return ha.config([diff_id], history=[draw(st.one_of(st.integers(), st.text(max_size=3)))])
    if kind == "history_created":
        return ha.config([diff_id], history=[{"created": draw(_BAD_TIME)}])
    if kind == "env":
        return ha.config([diff_id], config={"Env": draw(st.one_of(st.integers(), st.lists(st.integers(), min_size=1)))})
    if kind == "cmd":
        return ha.config([diff_id], config={"Cmd": draw(st.one_of(st.integers(), st.lists(st.integers(), min_size=1)))})
    if kind == "labels":
        return ha.config([diff_id], config={"Labels": {"a": draw(st.integers())}})
    if kind == "json":
        return draw(st.sampled_from([b"not json", b"{", b"\xff\xfe", b"[" * 100_000]))
    return json.dumps(draw(st.one_of(st.lists(st.integers()), st.integers(), st.text()))).encode()


@FEW
@given(cfg=bad_configs(), fmt=st.sampled_from(["docker", "oci"]))
def test_bad_config_refused_at_load_and_nothing_stored(tmp_path_factory, cfg, fmt):
    tmp = tmp_path_factory.mktemp("cfg")
    root = str(tmp / "root")
    lay = ha.layer(("f", "file"))
    data = ha.docker_archive([lay], config_bytes=cfg) if fmt == "docker" else ha.oci_archive([lay], config_bytes=cfg)
    refused(root, data, tmp)


def test_bad_record_does_not_break_listing_inspect_prune(tmp_path, capsys):
    """A record an older pyctr stored (created: 12345): listing warns once and shows the others,
    inspect of the others works, rmi and prune remove it."""
    from pyctr import cli
    root = str(tmp_path / "root")
    load_bytes(root, ha.docker_archive([ha.layer(("good", "file"))], tags=["good/one:1"]), tmp_path)
    s = Store(root).lock()
    bad_cfg = json.dumps({"created": 12345, "rootfs": {"type": "layers", "diff_ids": ["bogus"]}}).encode()
    bad_id = ha.sha(bad_cfg)
    (tmp_path / "root/image/overlay2/imagedb/content/sha256" / bad_id[7:]).write_bytes(bad_cfg)
    s.tag(parse("bad/one:1"), bad_id)
    s.unlock()
    capsys.readouterr()
    assert cli.main(["--root", root, "images"]) == 0
    out, err = capsys.readouterr()
    assert "good/one" in out and "bad/one" in out
    assert err.count("Warning") == 1 and bad_id in err and "created must be" in err
    assert cli.main(["--root", root, "inspect", "good/one:1", "bad/one:1"]) == 1
    out, err = capsys.readouterr()
    assert [i["RepoTags"] for i in json.loads(out)] == [["good/one:1"]]
    assert "Error: image " + bad_id in err and "Traceback" not in err
    assert cli.main(["--root", root, "rmi", "bad/one:1"]) == 0
    assert f"Deleted: {bad_id}" in capsys.readouterr().out
    assert cli.main(["--root", root, "images", "-q"]) == 0
    out, err = capsys.readouterr()
    assert err == "" and bad_id[7:19] not in out


# --- archives --------------------------------------------------------------------------------------

_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
                     max_leaves=8)
_ENTRY = st.fixed_dictionaries({}, optional={"Config": _JSON | st.sampled_from(["config.json", "missing.json", "../x"]),
                                             "Layers": _JSON | st.just(["l0/layer.tar", "nope/layer.tar"]),
                                             "RepoTags": _JSON | st.just(["UPPER/case:1"])})


@FEW
@given(manifest=st.one_of(_JSON, st.lists(_ENTRY, min_size=1, max_size=2), st.binary(max_size=20)))
def test_malformed_docker_manifest_is_a_clear_error(tmp_path_factory, manifest):
    tmp = tmp_path_factory.mktemp("man")
    root = str(tmp / "root")
    data = ha.docker_archive([ha.layer(("f", "file"))], manifest=manifest)
    try:
        load_bytes(root, data, tmp)
    except PyctrError:
        assert_nothing_stored(root)


def test_missing_members_and_non_json_config(tmp_path):
    lay = ha.layer(("f", "file"))
    assert "lacks 'config.json'" in refused(str(tmp_path / "r1"), ha.docker_archive([lay], members={"config.json": None}),
                                            tmp_path)
    assert "lacks 'l0/layer.tar'" in refused(str(tmp_path / "r2"),
                                             ha.docker_archive([lay], members={"l0/layer.tar": None}), tmp_path)
    assert "not valid JSON" in refused(str(tmp_path / "r3"), ha.docker_archive([lay], config_bytes=b"{nope"), tmp_path)
    assert "manifest.json" in refused(str(tmp_path / "r4"), ha.docker_archive([lay], manifest=b"\x00junk"), tmp_path)


def test_refused_layer_leaves_nothing_even_after_good_ones(tmp_path):
    good = [ha.layer((f"f{i}", "file")) for i in range(3)]
    bad = ha.layer(("../escape", "file"))
    msg = refused(str(tmp_path / "root"), ha.docker_archive(good + [bad]), tmp_path, match="escape")
    assert "nothing was stored" in msg or "partial layer was removed" in msg


def test_too_many_layers_refused_before_anything_is_committed(tmp_path):
    layers = [ha.layer((f"f{i}", "file")) for i in range(126)]
    msg = refused(str(tmp_path / "root"), ha.docker_archive(layers), tmp_path, match="max depth exceeded")
    assert "126 layers" in msg


def test_digest_mismatch_in_oci_archive_leaves_nothing(tmp_path):
    lay = ha.layer(("f", "file"))
    wrong = ha.config([ha.sha(b"something else")])
    refused(str(tmp_path / "root"), ha.oci_archive([lay], config_bytes=wrong), tmp_path, match="diff id")


def test_failed_command_removes_the_store_it_created(tmp_path):
    root = str(tmp_path / "fresh")
    with pytest.raises(PyctrError):
        load_bytes(root, b"not a tar at all", tmp_path)
    assert not os.path.exists(root)
    # a store that existed keeps its skeleton
    load_bytes(root, ha.docker_archive([ha.layer(("f", "file"))]), tmp_path)
    with pytest.raises(PyctrError):
        load_bytes(root, b"not a tar at all", tmp_path)
    assert len(contents(root)["images"]) == 1


# --- verified serving ----------------------------------------------------------------------------

def _image_with_blob(tmp_path, root, compress):
    lay = ha.layer(("etc", "dir"), ("etc/motd", "file", {"data": b"genuine\n"}))
    load_bytes(root, ha.oci_archive([lay], tag="real/image:1", compress=compress), tmp_path)
    s = Store(root).lock()
    (blob,) = s.layer_blobs(s.resolve("real/image:1"))
    return s, lay, blob


def test_planted_layer_blob_refused_at_load(tmp_path):
    """A second archive claims the diff id of a layer the store has, with other content."""
    root = str(tmp_path / "root")
    s, lay, _ = _image_with_blob(tmp_path, root, compress=False)
    s.unlock()
    planted = ha.layer(("etc", "dir"), ("etc/motd", "file", {"data": b"planted\n"}))
    cfg = ha.config([ha.sha(lay)], created="2025-01-01T00:00:00Z")
    before = contents(root)
    with pytest.raises(PyctrError, match="diff id"):
        load_bytes(root, ha.docker_archive([planted], tags=["evil/image:1"], config_bytes=cfg), tmp_path)
    assert contents(root) == before


@pytest.mark.parametrize("fmt", ["docker-archive", "oci-archive"])
@pytest.mark.parametrize("compress", [False, True])
def test_save_verifies_what_it_serves(tmp_path, fmt, compress):
    root = str(tmp_path / "root")
    s, lay, blob = _image_with_blob(tmp_path, root, compress)
    path = s.content.path(blob)
    data = open(path, "rb").read()
    os.chmod(path, 0o644)
    planted = ha.layer(("etc", "dir"), ("etc/motd", "file", {"data": b"planted\n"}))
    with open(path, "wb") as f:
        import gzip
        f.write(gzip.compress(planted) if compress else planted)
    with pytest.raises(PyctrError, match="does not match its digest") as e:
        save(s, ["real/image:1"], io.BytesIO(), fmt)
    assert blob in str(e.value) or ha.sha(lay) in str(e.value)
    with open(path, "wb") as f:
        f.write(data)
    save(s, ["real/image:1"], io.BytesIO(), fmt)


def test_save_refuses_a_layer_longer_than_its_recorded_size(tmp_path):
    """A recorded size shorter than the layer would cut its tar entry short while the hash of the
    whole stream still matches: save must refuse it, not write a truncated layer."""
    root = str(tmp_path / "root")
    s, lay, _ = _image_with_blob(tmp_path, root, compress=True)
    chain = s.chain(s.resolve("real/image:1"))[-1]
    size_file = os.path.join(root, "image", "overlay2", "layerdb", chain.replace(":", "/"), "size")
    with open(size_file, "w") as f:
        f.write("3")
    with pytest.raises(PyctrError, match="longer than its recorded size"):
        save(s, ["real/image:1"], io.BytesIO(), "docker-archive")


class FakeRegistry:
    """The registry client's surface push uses, recording what it is sent."""

    def __init__(self):
        self.uploaded, self.manifests, self.actions = [], [], None

    def ping(self):
        pass

    def has_blob(self, digest):
        return False

    def mount_blob(self, digest, repo):
        return False, None

    def upload_blob(self, digest, f, size, location=None):
        self.uploaded.append((digest, f.read()))

    def put_manifest(self, ref, body, media_type):
        self.manifests.append((ref, body, media_type))


def test_push_verifies_blobs_and_sends_each_tags_own_manifest(tmp_path):
    from pyctr.image.push import push
    root = str(tmp_path / "root")
    s, lay, blob = _image_with_blob(tmp_path, root, compress=True)
    image_id = s.resolve("real/image:1")
    # the same image pulled again as Docker schema2 under another tag
    cfg = s.config_bytes(image_id)
    docker = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                         "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                                    "digest": image_id, "size": len(cfg)},
                         "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                                     "digest": blob, "size": s.content.size(blob)}]}).encode()
    dm = s.content.put(docker)
    s.add_image(cfg, dm)
    s.tag(parse("real/image:docker"), image_id, manifest=dm)
    oci_digest = s.manifest_digest(image_id, "real/image:1")
    assert oci_digest != dm
    for name, want in (("real/image:1", oci_digest), ("real/image:docker", dm)):
        reg = FakeRegistry()
        assert push(s, reg, image_id, parse(name), quiet=True, source=name) == want
        assert reg.manifests[0][1] == s.content.read(want)
    # a planted blob is refused before anything is uploaded
    import gzip
    path = s.content.path(blob)
    with open(path, "wb") as f:
        f.write(gzip.compress(ha.layer(("etc/motd", "file", {"data": b"planted"}))))
    reg = FakeRegistry()
    with pytest.raises(PyctrError, match="does not match its digest"):
        push(s, reg, image_id, parse("real/image:1"), quiet=True, source="real/image:1")
    assert reg.uploaded == [] and reg.manifests == []


# --- rmi, prune -a --------------------------------------------------------------------------------

def test_rmi_removes_layers_unless_shared_and_prune_all(tmp_path):
    from pyctr.image import store as store_mod
    root = str(tmp_path / "root")
    base = ha.layer(("base", "file"))
    load_bytes(root, ha.docker_archive([base, ha.layer(("a", "file"))], tags=["x/a:1"]), tmp_path, "a.tar")
    load_bytes(root, ha.docker_archive([base, ha.layer(("b", "file"))], tags=["x/b:1"]), tmp_path, "b.tar")
    load_bytes(root, ha.docker_archive([ha.layer(("c", "file"))], tags=["x/c:1"]), tmp_path, "c.tar")
    with Store(root) as s:
        a_chain, c_chain = s.chain(s.resolve("x/a:1")), s.chain(s.resolve("x/c:1"))
        out = s.remove_image("x/a:1")
        assert ("Deleted", a_chain[1]) in out and ("Deleted", a_chain[0]) not in out  # base is shared
        assert s.layerdb.get(a_chain[0]) and not s.layerdb.get(a_chain[1])
        c_id = s.resolve("x/c:1")
        store_mod.IN_USE_HOOKS.append(lambda store: {c_id})  # as the container store will
        try:
            out = s.prune(all_images=True)
        finally:
            store_mod.IN_USE_HOOKS.pop()
        assert ("Untagged", "x/b:1") in out and s.image_ids() == [c_id]
        assert s.layerdb.all() == [c_chain[0]]
        assert set(s.content.digests()) == s.blobs_of(c_id)


# --- layers: AUFS metadata, empty layers, header bounds ---------------------------------------------

def test_aufs_metadata_and_empty_layer_load(tmp_path):
    aufs = ha.layer((".wh..wh.plnk", "dir"), (".wh..wh.plnk/1234.5678", "file", {"data": b"linked\n", "mode": 0o600}),
                    (".wh..wh.aufs", "file"), (".wh..wh.orph", "dir"), ("a", "dir"),
                    ("a/x", "link", {"linkname": ".wh..wh.plnk/1234.5678"}),
                    ("a/y", "link", {"linkname": ".wh..wh.plnk/1234.5678"}),
                    ("a/.wh..wh..opq", "file"))
    root = str(tmp_path / "root")
    load_bytes(root, ha.docker_archive([b"", aufs]), tmp_path)
    with Store(root) as s:
        image_id = s.resolve("hostile/image:1")
        assert s.config(image_id)["rootfs"]["diff_ids"][0] == ha.sha(b"")
        diff = s.overlay.diff(s.layerdb.get(s.chain(image_id)[1])["cache-id"])
        assert sorted(os.listdir(diff)) == ["a"]
        assert sorted(os.listdir(os.path.join(diff, "a"))) == ["x", "y"]
        x = os.stat(os.path.join(diff, "a/x"))
        assert open(os.path.join(diff, "a/x"), "rb").read() == b"linked\n" and x.st_mode & 0o777 == 0o600
        assert x.st_ino == os.stat(os.path.join(diff, "a/y")).st_ino
        assert os.getxattr(os.path.join(diff, "a"), "trusted.overlay.opaque") == b"y"
        assert not [n for n in os.listdir(os.path.dirname(os.path.dirname(diff))) if "plnk" in n]


@FEW
@given(uid=st.integers(min_value=0, max_value=(1 << 56) - 1), gid=st.integers(min_value=0, max_value=(1 << 56) - 1),
       mtime=st.integers(min_value=0, max_value=1 << 70))
def test_huge_header_numbers_are_clear_errors_or_clamped(tmp_path_factory, uid, gid, mtime):
    from pyctr.errors import LayerError
    from pyctr.image.layer import apply_layer
    MAX_ID = (1 << 32) - 2  # (uid_t)-1 is "unchanged" to chown
    dest = tmp_path_factory.mktemp("hdr")
    data = ha.layer(("f", "file", {"uid": uid, "gid": gid, "mtime": mtime}), fmt=tarfile.GNU_FORMAT)
    if uid > MAX_ID or gid > MAX_ID:
        with pytest.raises(LayerError, match="out of range"):
            apply_layer(io.BytesIO(data), str(dest))
        return
    apply_layer(io.BytesIO(data), str(dest))
    st_ = os.lstat(dest / "f")
    assert (st_.st_uid, st_.st_gid) == (uid, gid)
    assert st_.st_mtime_ns == (mtime * 10**9 if mtime * 10**9 < 1 << 63 else 0) or st_.st_mtime_ns < mtime * 10**9


# --- deep trees, export ------------------------------------------------------------------------------

@pytest.fixture
def deep_root(tmp_path):
    """A store root removed without recursion at teardown: pytest's own clean-up of a kept tmp dir
    recurses and would fail on the deep tree the test leaves if it fails."""
    from pyctr.image.fsutil import rmtree
    root = str(tmp_path / "root")
    yield root
    rmtree(root)


def import_and_export(tmp_path, root, layer_tar, name):
    """Import layer_tar as image name; returns (image id, the members of its export, in order)."""
    src = tmp_path / "layer.tar"
    src.write_bytes(layer_tar)
    with Store(root) as s:
        image_id = import_tarball(s, str(src), name)
        out = io.BytesIO()
        export(s, image_id, out)
    out.seek(0)
    with tarfile.open(fileobj=out) as tf:
        return image_id, [m for m in tf], out.getvalue()


def test_deep_tree_imports_exports_and_is_removed(tmp_path, deep_root):
    import sys
    depth = sys.getrecursionlimit() + 200
    root = deep_root
    _, members, _ = import_and_export(tmp_path, root, ha.deep_tree(depth), "deep/tree:1")
    names = [m.name for m in members]
    assert names[0] == "." and names[-1].endswith("/d/bottom") and len(names) == depth + 2
    with Store(root) as s:
        s.remove_image("deep/tree:1")
    assert_nothing_stored(root)


def test_export_keeps_xattrs_root_metadata_and_drops_whiteouts(tmp_path):
    cap = b"\x01\x00\x00\x02\x00\x20\x00\x00" + bytes(12)  # cap_net_bind_service, permitted
    lay = ha.layer((".", "dir", {"mode": 0o711, "uid": 7, "gid": 8, "mtime": 1_234_567_890}),
                   ("bin", "dir"), ("bin/ping", "file", {"xattrs": {"security.capability": cap}}),
                   ("etc", "dir", {"xattrs": {"user.note": b"hello", "trusted.mine": b"\xff\x00bin"}}),
                   ("etc/.wh.gone", "file"))
    root = str(tmp_path / "root")
    _, listed, exported = import_and_export(tmp_path, root, lay, "x/caps:1")
    members = {m.name.rstrip("/"): m for m in listed}
    top = members["."]
    assert (top.mode, top.uid, top.gid, top.mtime) == (0o711, 7, 8, 1_234_567_890)
    raw = members["bin/ping"].pax_headers["SCHILY.xattr.security.capability"]
    assert raw.encode("utf-8", "surrogateescape") == cap
    assert members["etc"].pax_headers["SCHILY.xattr.user.note"] == "hello"
    assert members["etc"].pax_headers["SCHILY.xattr.trusted.mine"].encode("utf-8", "surrogateescape") == b"\xff\x00bin"
    assert "etc/gone" not in members and "etc/.wh.gone" not in members
    assert not any(k.startswith("SCHILY.xattr.trusted.overlay") for m in members.values() for k in m.pax_headers)
    # and the export imports back to the same files and attributes
    back = tmp_path / "back.tar"
    back.write_bytes(exported)
    with Store(root) as s:
        image_id = import_tarball(s, str(back), "x/back:1")
        diff = s.overlay.diff(s.layerdb.get(s.chain(image_id)[0])["cache-id"])
        assert os.getxattr(os.path.join(diff, "bin/ping"), "security.capability") == cap
        assert os.stat(diff).st_mode & 0o7777 == 0o711


# --- killed commands ---------------------------------------------------------------------------------

@pytest.mark.parametrize("delay", [0.0, 0.05, 0.15, 0.3, None])
def test_load_killed_at_any_point_leaves_nothing_for_the_next_command(tmp_path, delay):
    """A load SIGKILLed at some point (None: just before it would have released the lock, after
    storing everything): the next command to take the lock undoes all of it."""
    import signal
    import time
    layers = [ha.layer((f"dir{i}", "dir"), *[(f"dir{i}/f{j}", "file", {"data": os.urandom(2000)}) for j in range(300)])
              for i in range(6)]
    path = tmp_path / "in.tar"
    path.write_bytes(ha.docker_archive(layers))
    root = str(tmp_path / "root")
    import subprocess
    import sys
    here = os.path.dirname(os.path.abspath(__file__))
    repo = os.path.dirname(os.path.dirname(here))
    script = ("import sys, time\n"
              f"sys.path[:0] = [{os.path.join(repo, 'manager')!r}, {os.path.join(repo, 'runtime')!r}]\n"
              "from pyctr.image.archive import load\nfrom pyctr.image.store import Store\n"
              f"s = Store({root!r}).lock()\nprint('locked', flush=True)\n"
              f"load(s, {str(path)!r})\nprint('done', flush=True)\ntime.sleep(60)\n")
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
    try:
        assert child.stdout.readline() == b"locked\n"
        if delay is None:
            assert child.stdout.readline() == b"done\n"
        else:
            time.sleep(delay)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()
    with Store(root):
        pass
    assert all(not v for v in contents(root).values()), contents(root)
