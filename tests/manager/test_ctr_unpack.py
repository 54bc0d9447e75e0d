"""Layers applied on first use (unpack.py) for an image whose blobs are all the store has, as
`pull --no-unpack` leaves it; and the worker pool that stages layers (tasks.py)."""
import gzip
import json
import os
import threading

import pytest

from pyctr.errors import DigestMismatch, PyctrError
from pyctr.image import digest as _digest
from pyctr.image import manifest as _m
from pyctr.image.reference import parse
from pyctr.image.store import Store
from pyctr.image.tasks import Pool
from pyctr.image.unpack import ensure_unpacked, missing_layers
from test_ctr_layer import tar


def blobs_only_image(store, raws, tag="x/packed:1", corrupt=None):
    """Put gzipped layers, config and manifest in the content store and record the image, as a
    pull with --no-unpack does; corrupt=i stores a layer i whose diff id does not match."""
    layers, diff_ids = [], []
    for i, raw in enumerate(raws):
        diff_ids.append(_digest.sha256_bytes(raw))
        blob = gzip.compress(raw if i != corrupt else raw.replace(b"payload", b"PAYLOAD"), 1)
        layers.append({"mediaType": _m.OCI_LAYER_GZIP, "digest": store.content.put(blob), "size": len(blob)})
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
    cfg = store.content.put(config)
    manifest = json.dumps({"schemaVersion": 2, "mediaType": _m.OCI_MANIFEST, "layers": layers,
                           "config": {"mediaType": _m.OCI_CONFIG, "digest": cfg, "size": len(config)}}).encode()
    image_id = store.add_image(config, store.content.put(manifest))
    store.tag(parse(tag), image_id)
    return image_id


@pytest.fixture
def store(tmp_path):
    s = Store(str(tmp_path / "root")).lock()
    yield s
    s.unlock()


def test_layers_are_applied_in_order_on_first_use_then_shared(store):
    raws = [tar(("etc", "dir"), ("etc/a", "file", b"A")), tar(("etc/b", "file", b"B")),
            tar(("etc/.wh.a", "file"), ("etc/c", "file", b"C"))]
    image_id = blobs_only_image(store, raws)
    assert missing_layers(store, image_id) == [0, 1, 2] and store.layerdb.all() == []
    assert ensure_unpacked(store, image_id) == 3
    chain = store.chain(image_id)
    top = store.layerdb.get(chain[-1])
    assert top["parent"] == chain[1] and store.layerdb.get(chain[1])["parent"] == chain[0]
    diff = store.overlay.diff(top["cache-id"])
    assert sorted(os.listdir(os.path.join(diff, "etc"))) == ["a", "c"]  # a: the whiteout device
    assert ensure_unpacked(store, image_id) == 0
    # a second image on the same bottom layers unpacks only what it adds
    other = blobs_only_image(store, raws[:2] + [tar(("etc/d", "file"))], "x/other:1")
    assert missing_layers(store, other) == [2]
    assert ensure_unpacked(store, other) == 1 and len(store.layerdb.all()) == 4


def test_a_layer_that_does_not_match_its_diff_id_leaves_nothing_new(store):
    raws = [tar(("a", "file", b"x" * 5000)), tar(("b", "file", b"payload"))]
    image_id = blobs_only_image(store, raws, corrupt=1)
    with pytest.raises(DigestMismatch, match="uncompressed diff id"):
        ensure_unpacked(store, image_id)
    # the good bottom layer may stay committed (prune removes it); nothing staged is left behind
    assert len(store.layerdb.all()) <= 1 and os.listdir(store.overlay.tmp) == []
    assert missing_layers(store, image_id)[-1] == 1


def test_missing_blob_is_a_clear_error(store):
    image_id = blobs_only_image(store, [tar(("a", "file"))])
    layer = store.layer_blobs(image_id)[0]
    store.content.delete(layer)
    with pytest.raises(PyctrError, match=f"layer blob {layer} is missing"):
        ensure_unpacked(store, image_id)
    assert store.layerdb.all() == []


def test_prune_keeps_the_blobs_of_a_packed_image_and_removes_them_with_it(store):
    image_id = blobs_only_image(store, [tar(("a", "file"))])
    blobs = store.blobs_of(image_id)
    assert store.prune() == [] and all(store.content.has(b) for b in blobs)
    store.remove_image("x/packed:1")
    store.prune()
    assert os.listdir(store.content.blobs) == []


def test_pool_runs_in_parallel_keeps_errors_and_cancels_what_has_not_started():
    started, release = threading.Barrier(2, timeout=10), threading.Event()

    def both_at_once(x):
        started.wait()  # only passes if two run at the same time
        release.wait(10)
        return x * 2

    def boom():
        raise ValueError("boom")

    with Pool(2, "t") as pool:
        a, b = pool.submit(both_at_once, 1), pool.submit(both_at_once, 2)
        c = pool.submit(boom)
        d = pool.submit(both_at_once, 4)
        assert d.cancel() and d.cancelled() and not c.cancelled()
        release.set()
        assert (a.result(), b.result()) == (2, 4)
        assert isinstance(c.exception(), ValueError)
        with pytest.raises(ValueError):
            c.result()
        assert not a.cancel()
    assert not any(t.is_alive() for t in pool._threads)
    with pytest.raises(RuntimeError):
        pool.submit(boom)
