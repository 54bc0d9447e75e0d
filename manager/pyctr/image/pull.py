"""`pyctr pull`: manifest (or index -> platform manifest), config, layers in parallel, then apply.

Every blob is hashed while it streams into the content store and filed only if it matches its
descriptor; each layer is applied (into a staging dir) as soon as its download is done, two at a
time, and committed into overlay2/ in order.
"""
import json
import os
import threading

from pyctr.errors import DigestMismatch, PyctrError, RegistryError
from pyctr.image import digest as _digest
from pyctr.image import manifest as _m

_CHUNK = 1 << 20


class Progress:
    """One line per layer; redrawn in place on a terminal, milestones only otherwise."""

    def __init__(self, out, quiet=False):
        self.out, self.quiet = out, quiet
        self.tty = hasattr(out, "isatty") and out.isatty()
        self.lock = threading.Lock()
        self.lines = []
        self.state = {}

    def add(self, key, total):
        with self.lock:
            self.lines.append(key)
            self.state[key] = (0, total, "Waiting")
            if self.tty and not self.quiet:
                self.out.write(self._fmt(key) + "\n")
                self.out.flush()

    def _fmt(self, key):
        done, total, status = self.state[key]
        short = key[7:19]
        if status == "Downloading" and total:
            width = 30
            filled = int(width * done / total)
            bar = "=" * filled + (">" if filled < width else "") + " " * (width - filled - 1)
            return f"{short}: Downloading [{bar}] {done / 1e6:.1f}MB/{total / 1e6:.1f}MB"
        return f"{short}: {status}"

    def update(self, key, done=None, status=None):
        if self.quiet:
            return
        with self.lock:
            d, total, s = self.state[key]
            self.state[key] = (d if done is None else done, total, status or s)
            if self.tty:
                up = len(self.lines) - self.lines.index(key)
                self.out.write(f"\x1b[{up}A\r\x1b[2K{self._fmt(key)}\x1b[{up}B\r")
                self.out.flush()
            elif status:
                self.out.write(self._fmt(key) + "\n")
                self.out.flush()

    def message(self, text):
        if not self.quiet:
            with self.lock:
                self.out.write(text + "\n")
                self.out.flush()


def fetch_blob(client, store, desc, progress=None, what="blob"):
    """Download desc into the content store, verifying digest and size; no-op if present."""
    digest, size = desc["digest"], desc.get("size")
    _digest.split(digest)
    if store.content.has(digest):
        if progress:
            progress.update(digest, status="Already exists")
        return
    resp = client.get_blob(digest)
    done = 0
    with store.content.writer(digest, f"{what} {digest}") as w:
        while True:
            try:
                chunk = resp.read(_CHUNK)
            except Exception as e:  # http.client.IncompleteRead, timeouts, resets
                raise RegistryError(f"download of {what} {digest} interrupted after {done} bytes: "
                                    f"{e.__class__.__name__}") from None
            if not chunk:
                break
            done += len(chunk)
            if size is not None and done > size:
                raise DigestMismatch(f"{what} {digest}", f"{size} bytes", f"more than {size} bytes")
            w.write(chunk)
            if progress:
                progress.update(digest, done=done, status="Downloading")
        if size is not None and done != size:
            raise RegistryError(f"download of {what} {digest} interrupted: got {done} of {size} bytes")
        w.commit()
    if progress:
        progress.update(digest, status="Download complete")


def _stage(store, layer, diff_id, download, progress):
    download.result()
    progress.update(layer["digest"], status="Extracting")
    path = store.content.path(layer["digest"])
    return store.stage_layer(lambda: open(path, "rb"), diff_id, what=layer["digest"])


def _verified_manifest(client, ref_str, expected=None):
    body, ctype, header_digest = client.get_manifest(ref_str)
    actual = _digest.sha256_bytes(body)
    if expected and actual != expected:
        raise DigestMismatch(f"manifest {ref_str}", expected, actual)
    if header_digest and header_digest.startswith("sha256:") and header_digest != actual:
        raise DigestMismatch(f"manifest {ref_str} (Docker-Content-Digest)", header_digest, actual)
    doc, mt = _m.media_type(body, ctype)
    return body, doc, mt, actual


def pull(store, client, ref, platform=None, out=None, quiet=False, parallel=3):
    """Pull ref into store (which the caller has locked); returns the image id."""
    import sys
    from concurrent.futures import ThreadPoolExecutor
    progress = Progress(out or sys.stderr, quiet)
    client.ping()
    body, doc, mt, mdigest = _verified_manifest(client, ref.ref, ref.digest)
    index_body = None
    if mt in _m.INDEXES:
        index_body, index_digest = body, mdigest
        desc = _m.select(doc, _m.parse_platform(platform))
        body, doc, mt, mdigest = _verified_manifest(client, desc["digest"], desc["digest"])
        if mt in _m.INDEXES:
            raise PyctrError("nested image indexes are not supported")
    cfg_desc, layers = _m.check_manifest(doc)
    progress.message(f"{ref.familiar()}: pulling manifest {mdigest}")
    fetch_blob(client, store, cfg_desc, what="config")
    config_bytes = store.content.read(cfg_desc["digest"])
    try:
        config = json.loads(config_bytes)
    except ValueError:
        raise PyctrError(f"image config {cfg_desc['digest']} is not valid JSON") from None
    diff_ids = (config.get("rootfs") or {}).get("diff_ids") or []
    if len(diff_ids) != len(layers):
        raise PyctrError(f"image config lists {len(diff_ids)} diff ids for {len(layers)} layers")
    chains = _digest.chain_ids(diff_ids)
    for layer in layers:
        progress.add(layer["digest"], layer.get("size") or 0)
    parent = None
    # Layers download in parallel and are applied in parallel too (a layer's diff/ does not depend
    # on the ones below it; creating files is mostly kernel time, which runs outside the GIL), each
    # into its own staging dir; they are committed into overlay2/ strictly in order.
    appliers = max(1, min(2, os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool, \
            ThreadPoolExecutor(max_workers=appliers, thread_name_prefix="apply") as apply_pool:
        staged, downloads = [], []
        for layer, chain, diff_id in zip(layers, chains, diff_ids):
            if store.layerdb.get(chain):
                staged.append(None)
                progress.update(layer["digest"], status="Already exists")
            else:
                dl = pool.submit(fetch_blob, client, store, layer, progress, "layer")
                downloads.append(dl)
                staged.append(apply_pool.submit(_stage, store, layer, diff_id, dl, progress))
        committed = set()
        try:
            for i, (layer, fut) in enumerate(zip(layers, staged)):
                if fut is not None:
                    committed.add(i)  # commit_layer consumes the staging dir even when it fails
                    parent, _ = store.commit_layer(parent, fut.result())
                    progress.update(layer["digest"], status="Pull complete")
                else:
                    parent = chains[i]
        except BaseException:
            for f in downloads + [f for f in staged if f is not None]:
                f.cancel()
            apply_pool.shutdown(wait=True)
            for i, f in enumerate(staged):
                if f is not None and i not in committed and not f.cancelled() and f.exception() is None:
                    store.discard_staged(f.result())
            raise
    if index_body is not None:
        store.content.put(index_body, index_digest, "index")
    store.content.put(body, mdigest, "manifest")
    image_id = store.add_image(config_bytes, mdigest)
    if image_id != cfg_desc["digest"]:
        raise DigestMismatch("image config", cfg_desc["digest"], image_id)
    from pyctr.image.reference import Reference
    if ref.tag:
        store.tag(Reference(ref.domain, ref.path, ref.tag), image_id)
    if ref.digest:
        store.tag(Reference(ref.domain, ref.path, None, ref.digest), image_id)
    store.set_meta(image_id, "source", ref.name)
    progress.message(f"Digest: {ref.digest or (index_digest if index_body is not None else mdigest)}")
    return image_id
