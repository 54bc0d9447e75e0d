"""save/load round trips in both archive formats, and the OCI archive's layout (image-layout.md)."""
import gzip
import hashlib
import io
import json
import tarfile

import pytest

from pyctr.errors import PyctrError
from pyctr.image.archive import import_tarball, load, save
from pyctr.image.store import Store
from test_ctr_layer import tar


@pytest.fixture
def store(tmp_path):
    s = Store(str(tmp_path / "root")).lock()
    src = tmp_path / "rootfs.tar.gz"
    src.write_bytes(gzip.compress(tar(("etc", "dir"), ("etc/motd", "file", b"hi\n"))))
    import_tarball(s, str(src), "example.com/a/b:v1", changes=['CMD ["/bin/sh"]'])
    return s


@pytest.mark.parametrize("fmt", ["docker-archive", "oci-archive"])
def test_save_load_round_trip(store, tmp_path, fmt):
    image_id = store.resolve("example.com/a/b:v1")
    buf = io.BytesIO()
    save(store, ["example.com/a/b:v1"], buf, fmt)
    path = tmp_path / "out.tar"
    path.write_bytes(buf.getvalue())
    other = Store(str(tmp_path / "root2")).lock()
    assert load(other, str(path)) == [("example.com/a/b:v1", image_id)]
    assert other.resolve("example.com/a/b:v1") == image_id


def test_oci_archive_layout(store):
    buf = io.BytesIO()
    save(store, ["example.com/a/b:v1"], buf, "oci-archive")
    buf.seek(0)
    with tarfile.open(fileobj=buf) as tf:
        files = {m.name: tf.extractfile(m).read() for m in tf.getmembers() if m.isfile()}
    assert json.loads(files["oci-layout"]) == {"imageLayoutVersion": "1.0.0"}
    for name, data in files.items():
        if name.startswith("blobs/sha256/"):
            assert hashlib.sha256(data).hexdigest() == name.rsplit("/", 1)[1]
    index = json.loads(files["index.json"])
    (desc,) = index["manifests"]
    assert desc["annotations"] == {"io.containerd.image.name": "example.com/a/b:v1",
                                   "org.opencontainers.image.ref.name": "v1"}
    manifest = json.loads(files["blobs/" + desc["digest"].replace(":", "/")])
    assert manifest["mediaType"] == desc["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    (layer,) = manifest["layers"]
    assert layer["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip"
    assert files["blobs/" + layer["digest"].replace(":", "/")][:2] == b"\x1f\x8b"  # stored blob, as is


def test_unknown_format_refused(store):
    with pytest.raises(PyctrError, match="unknown archive format"):
        save(store, ["example.com/a/b:v1"], io.BytesIO(), "tarball")
