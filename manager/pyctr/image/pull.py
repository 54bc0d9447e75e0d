"""`pyctr pull`: manifest (or index -> platform manifest), config, layer blobs in parallel.

Every blob is hashed while it streams into the content store and filed only if it matches its
descriptor (fetch.py). A full pull extracts each layer into a staging dir while it downloads,
following the download (two layers at a time, unpack.py), and commits it into overlay2/ in order
only once both its blob digest and its diff id are verified. `--no-unpack` stops at the content
store (as `ctr pull --skip-unpack` or `ctr content fetch`): blobs, config and tags recorded, the
layers applied on first use.
"""
import threading

from pyctr.errors import DigestMismatch, PyctrError
from pyctr.image import digest as _digest
from pyctr.image import imageconfig
from pyctr.image import manifest as _m
from pyctr.image.fetch import Download, fetch
from pyctr.image.progress import Progress


def _stage(store, download, diff_id):
    """Apply the layer as it downloads; the staged layer is returned only once the blob is filed."""
    try:
        with download.reader() as src:
            staged = store.stage_layer(lambda: src, diff_id, what=download.digest)
    except BaseException:
        # A corrupted blob is reported as such (a digest mismatch), whatever extracting it ran
        # into first: the download's error, if it has one, wins.
        download.wait()
        raise
    try:
        download.wait()  # the extractor may stop before the blob's last bytes (zstd frames, padding)
    except BaseException:
        store.discard_staged(staged)
        raise
    return staged


def _check_existing(download, diff_id):
    """A layer the store has by chain id: the blob downloaded for it must hold that diff id too (or
    save and push would later serve whatever it holds). Returns None: nothing to commit."""
    from pyctr.image.verify import check_diff_id
    try:
        with download.reader() as src:
            check_diff_id(src, diff_id, download.digest)
    finally:
        download.wait()
    return None


def _verified_manifest(client, ref_str, expected=None):
    body, ctype, header_digest = client.get_manifest(ref_str)
    actual = _digest.sha256_bytes(body)
    if expected and actual != expected:
        raise DigestMismatch(f"manifest {ref_str}", expected, actual)
    if header_digest and header_digest.startswith("sha256:") and header_digest != actual:
        raise DigestMismatch(f"manifest {ref_str} (Docker-Content-Digest)", header_digest, actual)
    doc, mt = _m.media_type(body, ctype)
    return body, doc, mt, actual


def _check_descriptor(desc, what, limit=None):
    """A descriptor from a registry, before its digest goes into a URL and its size into a budget."""
    if not isinstance(desc, dict):
        raise PyctrError(f"{what}: the descriptor is not a JSON object")
    from pyctr.image.fetch import checked_size
    _digest.check(desc.get("digest"), what)
    size = checked_size(desc, f"{what} {desc['digest']}")
    if limit is not None and size > limit:
        raise PyctrError(f"{what} {desc['digest']}: declared size {size} is over the {limit >> 20} MiB "
                         f"allowed (the limit of containerd and skopeo)")


def _check_free_space(store, descs):
    """Refuse a pull whose blobs, by their declared sizes, do not fit on the store's filesystem."""
    import os
    need = sum(d["size"] for d in descs if not store.content.has(d["digest"]))
    st = os.statvfs(store.content.ingest)
    free = st.f_bavail * st.f_frsize
    if need > free:
        raise PyctrError(f"not enough free space for the image's blobs in {store.content.root}: they "
                         f"declare {need} bytes ({need / 1e6:.1f} MB), {free} bytes "
                         f"({free / 1e6:.1f} MB) are free")


def pull(store, client, ref, platform=None, out=None, quiet=False, parallel=3, unpack=True):
    """Pull ref into store (which the caller has locked); returns the image id. Every blob is
    fetched into the content store; unpack=False leaves the layers there (unpack.ensure_unpacked
    applies them on first use)."""
    import sys
    from pyctr.image.registry import MANIFEST_MAX
    from pyctr.image.tasks import Pool
    progress = Progress(out or sys.stderr, quiet)
    client.ping()
    body, doc, mt, mdigest = _verified_manifest(client, ref.ref, ref.digest)
    index_body = None
    if mt in _m.INDEXES:
        index_body, index_digest = body, mdigest
        desc = _m.select(doc, _m.parse_platform(platform))
        _check_descriptor(desc, "manifest in the index", MANIFEST_MAX)
        body, doc, mt, mdigest = _verified_manifest(client, desc["digest"], desc["digest"])
        if mt in _m.INDEXES:
            raise PyctrError("nested image indexes are not supported")
    cfg_desc, layers = _m.check_manifest(doc)
    imageconfig.check_layer_count(len(layers), ref.familiar())
    _check_descriptor(cfg_desc, "image config", MANIFEST_MAX)
    for layer in layers:
        _check_descriptor(layer, "layer")
    _check_free_space(store, [cfg_desc] + layers)
    progress.message(f"{ref.familiar()}: pulling manifest {mdigest}")
    for layer in layers:
        progress.add(layer["digest"], layer["size"])
    cancel = threading.Event()

    def stop():
        """Make every download and extraction give up now: the ones blocked on a stalled
        registry included (their sockets are shut down), so one ctrl-c ends the pull."""
        cancel.set()
        client.abort()

    downloads = [Download(client, store, layer, "layer", progress, cancel) for layer in layers]
    with Pool(parallel, "fetch") as pool:
        try:
            # every blob the content store lacks is fetched (save and push need them), the layers
            # while the config downloads on this thread
            for dl in downloads:
                pool.submit(dl.run)
            fetch(client, store, cfg_desc, "config", cancel=cancel)
            config_bytes = store.content.read(cfg_desc["digest"])
            diff_ids = _diff_ids(config_bytes, cfg_desc, layers)
            if unpack:
                _unpack_while_fetching(store, downloads, diff_ids, progress, stop)
            for dl in downloads:
                dl.wait()
        except BaseException:
            stop()
            raise
    if index_body is not None:
        store.content.put(index_body, index_digest, "index")
    store.content.put(body, mdigest, "manifest")
    image_id = store.add_image(config_bytes, mdigest)
    if image_id != cfg_desc["digest"]:
        raise DigestMismatch("image config", cfg_desc["digest"], image_id)
    from pyctr.image.reference import Reference
    if ref.tag:
        store.tag(Reference(ref.domain, ref.path, ref.tag), image_id, manifest=mdigest)
    if ref.digest:
        store.tag(Reference(ref.domain, ref.path, None, ref.digest), image_id, manifest=mdigest)
    store.set_meta(image_id, "source", ref.name)
    progress.message(f"Digest: {ref.digest or (index_digest if index_body is not None else mdigest)}")
    return image_id


def _diff_ids(config_bytes, cfg_desc, layers):
    """The config's diff ids, once the whole config is valid (imageconfig.py): a config the store
    would refuse is refused before any layer is unpacked."""
    diff_ids = imageconfig.diff_ids(imageconfig.parse(config_bytes, f"image config {cfg_desc['digest']}"))
    if len(diff_ids) != len(layers):
        raise PyctrError(f"image config lists {len(diff_ids)} diff ids for {len(layers)} layers")
    return diff_ids


def _unpack_while_fetching(store, downloads, diff_ids, progress, stop):
    """Extract each layer the layer store lacks while it downloads; commit them in order."""
    from pyctr.image.unpack import commit_in_order
    jobs = []
    for dl, chain, diff_id in zip(downloads, _digest.chain_ids(diff_ids), diff_ids):
        if store.layerdb.get(chain):
            progress.update(dl.digest, status="Already exists")
            jobs.append((dl.digest, chain, lambda dl=dl, d=diff_id: _check_existing(dl, d)))
        else:
            jobs.append((dl.digest, chain, lambda dl=dl, d=diff_id: _stage(store, dl, d)))
    commit_in_order(store, jobs, progress, on_error=stop)
