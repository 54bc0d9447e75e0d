"""Bounded disk: what a layer declares is checked against the free space of the store's filesystem
before it is written, so a sparse tar (a few KiB declaring a GiB) or a gzip bomb fails at once with a
clear error, leaving nothing, instead of filling the disk. The store is on a size-capped tmpfs."""
import os
import subprocess

import pytest

from integration.manager import hostile_archive as ha
from pyctr.errors import PyctrError
from pyctr.image.archive import import_tarball, load
from pyctr.image.fsutil import free_bytes
from pyctr.image.store import Store
from test_ctr_hostile_store import assert_nothing_stored


@pytest.fixture
def small_fs(tmp_path):
    d = tmp_path / "small"
    d.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m,mode=0700", "pyctr-test", str(d)], check=True)
    yield d
    subprocess.run(["umount", str(d)], check=True)


def _refused_import(small_fs, src):
    root = str(small_fs / "root")
    free = free_bytes(str(small_fs))
    with pytest.raises(PyctrError, match="bytes free") as e:
        with Store(root) as s:
            import_tarball(s, str(src), "bomb/image:1")
    assert_nothing_stored(root)
    assert free_bytes(str(small_fs)) >= free - (64 << 10)
    return str(e.value)


def test_sparse_tar_fails_before_filling_the_disk(small_fs, tmp_path):
    src = ha.sparse_tar(str(tmp_path), 1 << 30)
    assert os.path.getsize(src) < 64 << 10
    msg = _refused_import(small_fs, src)
    assert "entry 'hole'" in msg and str(1 << 30) in msg


def test_gzip_bomb_fails_before_filling_the_disk(small_fs, tmp_path):
    src = tmp_path / "bomb.tar.gz"
    src.write_bytes(ha.gzip_bomb(256 << 20))
    assert src.stat().st_size < 1 << 20
    assert "entry 'zeros'" in _refused_import(small_fs, src)


def test_bomb_in_a_docker_archive_fails_and_leaves_nothing(small_fs, tmp_path):
    import io
    import tarfile
    bomb = ha.gzip_bomb(128 << 20)
    path = tmp_path / "bomb.tar"
    with tarfile.open(path, "w") as tf:
        for name, data in (("manifest.json", b'[{"Config":"c.json","RepoTags":["x/b:1"],"Layers":["l/layer.tar"]}]'),
                           ("c.json", ha.config([ha.sha(bytes(0))])), ("l/layer.tar", bomb)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    root = str(small_fs / "root")
    with pytest.raises(PyctrError, match="bytes free|diff id"):
        with Store(root) as s:
            load(s, str(path))
    assert_nothing_stored(root)


def test_a_layer_that_fits_is_applied(small_fs, tmp_path):
    src = tmp_path / "ok.tar.gz"
    src.write_bytes(ha.gzip_bomb(4 << 20))
    with Store(str(small_fs / "root")) as s:
        import_tarball(s, str(src), "fits/image:1")
        assert len(s.layerdb.all()) == 1
