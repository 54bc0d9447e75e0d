"""Layers into overlay2/: staged two at a time, committed in order; and unpacking on first use.

A layer's diff/ does not depend on the layers below it, and creating files is mostly kernel time
(outside the GIL), so independent layers are applied at once, each into its own staging dir
(store.stage_layer), and committed into overlay2/ strictly in order. A pull stages each layer from
its download as the bytes arrive (pull.py); an image pulled with `--no-unpack` has only its blobs,
config and tags in the store, and `ensure_unpacked` applies its layers from the content store the
first time something needs them (mount, bundle, export), diff ids verified as always.
"""
import os

from pyctr.errors import PyctrError
from pyctr.image import digest as _digest


def appliers():
    return max(1, min(2, os.cpu_count() or 1))


def commit_in_order(store, jobs, progress=None, on_error=None):
    """jobs: [(key, chain_id, stage)] bottom layer first; stage() returns what store.commit_layer
    takes (or None after only checking a layer the store has), or stage is None for a layer
    already in the store. Stages run in a pool of appliers(),
    commits in order on this thread. On any failure every staging dir is removed (on_error() is
    called first, to make the stages still running give up) and the error is raised; the layers
    committed before it are in the store's journal, which the failed command's rollback undoes."""
    from pyctr.image.tasks import Pool
    parent = None
    with Pool(appliers(), "apply") as pool:
        staged = [pool.submit(stage) if stage else None for _, _, stage in jobs]
        committed = set()
        try:
            for i, ((key, chain, _), fut) in enumerate(zip(jobs, staged)):
                if fut is None:
                    parent = chain
                    continue
                committed.add(i)  # commit_layer consumes the staging dir even when it fails
                layer = fut.result()
                if layer is None:
                    parent = chain
                    continue
                parent, _ = store.commit_layer(parent, layer)
                if progress:
                    progress.update(key, status="Pull complete")
        except BaseException:
            if on_error:
                on_error()
            for f in staged:
                if f is not None:
                    f.cancel()
            pool.shutdown(wait=True)
            for i, f in enumerate(staged):
                if f is not None and i not in committed and not f.cancelled() and f.exception() is None \
                        and f.result() is not None:
                    store.discard_staged(f.result())
            raise
    return parent


def _layer_descriptors(store, image_id):
    import json
    mdigest = store.manifest_digest(image_id)
    if not mdigest or not store.content.has(mdigest):
        raise PyctrError(f"image {image_id}: its layers are not unpacked and its manifest is not in the "
                         f"content store; pull it again")
    return json.loads(store.content.read(mdigest)).get("layers", [])


def missing_layers(store, image_id):
    """Indexes of the image's layers (bottom first) that are not in the layer store."""
    return [i for i, c in enumerate(store.chain(image_id)) if not store.layerdb.get(c)]


def ensure_unpacked(store, image_id):
    """Apply the image's layers that are not in overlay2/ yet from their blobs (the caller holds
    the store lock). Returns the number of layers applied."""
    missing = missing_layers(store, image_id)
    if not missing:
        return 0
    diff_ids = store.config(image_id).get("rootfs", {}).get("diff_ids", [])
    chains = _digest.chain_ids(diff_ids)
    layers = _layer_descriptors(store, image_id)
    if len(layers) != len(diff_ids):
        raise PyctrError(f"image {image_id}: its manifest lists {len(layers)} layers, its config "
                         f"{len(diff_ids)} diff ids")
    jobs = []
    for i, (desc, chain, diff_id) in enumerate(zip(layers, chains, diff_ids)):
        if i not in missing:
            jobs.append((desc["digest"], chain, None))
            continue
        path = store.content.path(desc["digest"])
        if not os.path.exists(path):
            raise PyctrError(f"image {image_id}: layer blob {desc['digest']} is missing from the content "
                             f"store; pull the image again")
        jobs.append((desc["digest"], chain,
                     lambda p=path, d=diff_id, w=desc["digest"]:
                     store.stage_layer(lambda: open(p, "rb"), d, what=w)))
    commit_in_order(store, jobs)
    return len(missing)
