"""The store's overlay2 layout, layer sharing by chain id, recovery of interrupted work, prune."""
import io
import os

import pytest

from pyctr.errors import LayerError
from pyctr.image.digest import chain_ids
from pyctr.image.store import Store
from test_ctr_layer import tar


def opener(raw):
    return lambda: io.BytesIO(raw)


def test_overlay2_layout_and_sharing(tmp_path):
    s = Store(str(tmp_path / "root")).lock()
    base, top = tar(("etc", "dir"), ("etc/a", "file")), tar(("etc/b", "file"))
    c0, d0 = s.add_layer(None, opener(base))
    c1, d1 = s.add_layer(c0, opener(top))
    assert [c0, c1] == chain_ids([d0, d1])
    l0, l1 = s.layerdb.get(c0), s.layerdb.get(c1)
    assert l0["diff"] == d0 and l1["parent"] == c0 and l0["parent"] == ""
    ov = tmp_path / "root" / "overlay2"
    dir0, dir1 = ov / l0["cache-id"], ov / l1["cache-id"]
    link0 = (dir0 / "link").read_text()
    assert len(link0) == 26
    assert os.readlink(ov / "l" / link0) == f"../{l0['cache-id']}/diff"
    assert not (dir0 / "lower").exists() and not (dir0 / "work").exists()
    assert (dir1 / "lower").read_text() == f"l/{link0}"
    assert (dir1 / "work").is_dir() and (dir1 / "diff/etc/b").is_file()
    # same chain again: shared, nothing new on disk
    n = len(os.listdir(ov))
    assert s.add_layer(None, opener(base), d0) == (c0, d0)
    assert len(os.listdir(ov)) == n
    rw = s.overlay.create_rw(l1["cache-id"])
    assert (ov / rw / "lower").read_text() == f"l/{(dir1 / 'link').read_text()}:l/{link0}"


def test_failed_layer_leaves_nothing(tmp_path):
    s = Store(str(tmp_path / "root")).lock()
    with pytest.raises(LayerError):
        s.add_layer(None, opener(tar(("ok", "file"), ("../bad", "file"))))
    assert os.listdir(s.overlay.home) == ["l"] and os.listdir(s.overlay.links) == []
    assert os.listdir(s.overlay.tmp) == [] and s.layerdb.all() == []


def test_recover_removes_interrupted_work(tmp_path):
    s = Store(str(tmp_path / "root")).lock()
    c0, _ = s.add_layer(None, opener(tar(("a", "file"))))
    cache_id, staging = s.overlay.staging()        # an extraction killed midway
    orphan, path = s.overlay.staging()
    s.overlay.commit(orphan, path)                   # killed before its layerdb entry
    open(os.path.join(s.content.ingest, "partial"), "wb").write(b"half a blob")
    s.unlock()
    s2 = Store(str(tmp_path / "root")).lock()
    assert os.listdir(s2.overlay.tmp) == [] and os.listdir(s2.content.ingest) == []
    assert sorted(os.listdir(s2.overlay.home)) == sorted(["l", s2.layerdb.get(c0)["cache-id"]])
    assert len(os.listdir(s2.overlay.links)) == 1


def test_prune_removes_unused_layers(tmp_path):
    import json
    s = Store(str(tmp_path / "root")).lock()
    c0, d0 = s.add_layer(None, opener(tar(("a", "file"))))
    cfg = json.dumps({"rootfs": {"type": "layers", "diff_ids": [d0]}}).encode()
    image_id = s.add_image(cfg)
    from pyctr.image.reference import parse
    s.tag(parse("x/y:1"), image_id)
    assert s.prune() == []
    s.tag(parse("x/y:2"), image_id)
    assert s.remove_image("x/y:1") == [("Untagged", "x/y:1")]
    # the last tag: the image goes, and its layer with it (as docker rmi), not at the next prune
    assert s.remove_image("x/y:2") == [("Untagged", "x/y:2"), ("Deleted", image_id), ("Deleted", c0)]
    assert s.prune() == []
    assert os.listdir(s.overlay.home) == ["l"] and s.layerdb.all() == []
