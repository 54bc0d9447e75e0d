"""The on-disk image store under --root (default /var/lib/pyctr), Docker's layout where it has one:

    content/blobs/sha256/<hex>                       manifests, configs, layer blobs as fetched
    overlay2/...                                     layer directories (overlay2.py)
    image/overlay2/layerdb/...                       layers by chain id (layerdb.py)
    image/overlay2/imagedb/content/sha256/<id>       image configs; the image id is their digest
    image/overlay2/imagedb/metadata/sha256/<id>/manifest   digest of the manifest that carried it
    image/overlay2/repositories.json                 tags and digests -> image ids, as Docker's

Every command that changes the store holds an exclusive flock on <root>/lock for its duration, and
first removes what an interrupted command left (ingest files, staged layers, unregistered layer
dirs): nothing half-written survives into the next command.
"""
import json
import os

from pyctr.errors import DigestMismatch, ImageNotFound, PyctrError
from pyctr.image import digest as _digest
from pyctr.image import reference as _ref
from pyctr.image.content import ContentStore
from pyctr.image.fsutil import rmtree
from pyctr.image.layerdb import LayerDB
from pyctr.image.overlay2 import Overlay2

DEFAULT_ROOT = "/var/lib/pyctr"


def _atomic_write(path, data):
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, path)


class Store:
    def __init__(self, root=DEFAULT_ROOT, allow_devices=False):
        self.root = os.path.abspath(root)
        os.makedirs(self.root, mode=0o700, exist_ok=True)
        self.allow_devices = allow_devices
        self._lock_fd = None
        self.content = ContentStore(self.root)
        self.overlay = Overlay2(self.root)
        self.layerdb = LayerDB(self.root)
        base = os.path.join(self.root, "image", "overlay2")
        self.configs = os.path.join(base, "imagedb", "content", "sha256")
        self.meta = os.path.join(base, "imagedb", "metadata", "sha256")
        for d in (self.configs, self.meta):
            os.makedirs(d, mode=0o700, exist_ok=True)
        self.repos_path = os.path.join(base, "repositories.json")

    # --- locking and recovery ----------------------------------------------------------------------

    def lock(self):
        import fcntl
        if self._lock_fd is None:
            self._lock_fd = os.open(os.path.join(self.root, "lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC,
                                    0o600)
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
            self.recover()
        return self

    def unlock(self):
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def __enter__(self):
        return self.lock()

    def __exit__(self, *_):
        self.unlock()

    def recover(self):
        """Remove leftovers of an interrupted command (we hold the lock: nobody else is writing)."""
        self.content.clean_ingest()
        self.layerdb.clean_tmp()
        for n in os.listdir(self.overlay.tmp):
            rmtree(os.path.join(self.overlay.tmp, n))
        known = {self.layerdb.get(c)["cache-id"] for c in self.layerdb.all()}
        known |= {m["mount-id"] for m in self.layerdb.list_mounts()}
        for cache_id in self.overlay.ids():
            if cache_id not in known:
                self.overlay.remove(cache_id)
        self.overlay.clean_links()
        builds = os.path.join(self.root, "build")
        if os.path.isdir(builds) and os.listdir(builds):  # a killed `pyctr build`'s mounts and containers
            from pyctr.build.workspace import clean_stale
            clean_stale(self.root)

    # --- layers ------------------------------------------------------------------------------------

    def add_layer(self, parent_chain, opener, expected_diff_id=None, what="layer"):
        """Apply one layer on top of parent_chain; returns (chain_id, diff_id). Shared if present."""
        if expected_diff_id:
            chain = _digest.chain_ids([parent_chain, expected_diff_id])[1] if parent_chain else expected_diff_id
            if self.layerdb.get(chain):
                return chain, expected_diff_id
        return self.commit_layer(parent_chain, self.stage_layer(opener, expected_diff_id, what))

    def stage_layer(self, opener, expected_diff_id=None, what="layer"):
        """Apply a layer into a fresh staging dir, its diff id verified; returns what commit_layer
        takes. Needs no parent: a layer's diff/ is the same whatever lies below it, so independent
        layers can be staged at once (pull does) and committed in order afterwards."""
        from pyctr.image.layer import apply_layer
        cache_id, staging = self.overlay.staging()
        try:
            with opener() as f:
                diff_id, size = apply_layer(f, os.path.join(staging, "diff"), what, self.allow_devices)
            if expected_diff_id and diff_id != expected_diff_id:
                raise DigestMismatch(f"{what} (uncompressed diff id)", expected_diff_id, diff_id)
        except BaseException:
            self.overlay.discard(staging)
            raise
        return cache_id, staging, diff_id, size

    def discard_staged(self, staged):
        self.overlay.discard(staged[1])

    def commit_layer(self, parent_chain, staged):
        """Move a staged layer into overlay2/ on top of parent_chain (or drop it if that chain
        exists by now); returns (chain_id, diff_id). The staging dir is gone either way."""
        cache_id, staging, diff_id, size = staged
        try:
            chain = _digest.chain_ids([parent_chain, diff_id])[1] if parent_chain else diff_id
            if self.layerdb.get(chain):
                self.overlay.discard(staging)
                return chain, diff_id
            parent_cache = self.layerdb.get(parent_chain)["cache-id"] if parent_chain else None
            self.overlay.commit(cache_id, staging, parent_cache)
        except BaseException:
            self.overlay.discard(staging)
            raise
        try:
            self.layerdb.add(chain, cache_id, diff_id, size, parent_chain)
        except BaseException:
            self.overlay.remove(cache_id)
            raise
        return chain, diff_id

    # --- images ------------------------------------------------------------------------------------

    def add_image(self, config_bytes, manifest_digest=None):
        image_id = _digest.sha256_bytes(config_bytes)
        path = os.path.join(self.configs, _digest.split(image_id)[1])
        if not os.path.exists(path):
            _atomic_write(path, config_bytes)
        if manifest_digest:
            self.set_meta(image_id, "manifest", manifest_digest)
        return image_id

    def set_meta(self, image_id, key, value):
        d = os.path.join(self.meta, _digest.split(image_id)[1])
        os.makedirs(d, exist_ok=True)
        _atomic_write(os.path.join(d, key), value.encode())

    def get_meta(self, image_id, key):
        try:
            with open(os.path.join(self.meta, _digest.split(image_id)[1], key)) as f:
                return f.read().strip()
        except FileNotFoundError:
            return None

    def config_bytes(self, image_id):
        try:
            with open(os.path.join(self.configs, _digest.split(image_id)[1]), "rb") as f:
                return f.read()
        except FileNotFoundError:
            raise ImageNotFound(image_id) from None

    def config(self, image_id):
        return json.loads(self.config_bytes(image_id))

    def manifest_digest(self, image_id):
        return self.get_meta(image_id, "manifest")

    def chain(self, image_id):
        diff_ids = self.config(image_id).get("rootfs", {}).get("diff_ids", [])
        return _digest.chain_ids(diff_ids)

    def image_ids(self):
        return ["sha256:" + n for n in os.listdir(self.configs)]

    # --- repositories.json -------------------------------------------------------------------------

    def repositories(self):
        try:
            with open(self.repos_path) as f:
                return json.load(f).get("Repositories", {})
        except FileNotFoundError:
            return {}

    def _save_repositories(self, repos):
        _atomic_write(self.repos_path, json.dumps({"Repositories": repos}, indent=1).encode())

    def tag(self, ref, image_id):
        repos = self.repositories()
        entry = repos.setdefault(ref.familiar_name, {})
        entry[ref.familiar()] = image_id
        self._save_repositories(repos)

    def untag(self, ref):
        repos = self.repositories()
        entry = repos.get(ref.familiar_name, {})
        image_id = entry.pop(ref.familiar(), None)
        if not entry:
            repos.pop(ref.familiar_name, None)
        self._save_repositories(repos)
        return image_id

    def tags_of(self, image_id):
        return sorted(k for entry in self.repositories().values() for k, v in entry.items() if v == image_id)

    def resolve(self, name):
        """Image id for a reference, an image id, or an unambiguous id prefix."""
        hexpart = name[7:] if name.startswith("sha256:") else name
        if 1 <= len(hexpart) <= 64 and all(c in "0123456789abcdef" for c in hexpart):
            matches = [i for i in self.image_ids() if i[7:].startswith(hexpart)]
            if len(matches) == 1:
                return matches[0]
            if len(matches) > 1 and len(hexpart) < 64:
                raise PyctrError(f"image id prefix {name} is ambiguous")
        try:
            ref = _ref.parse(name)
        except PyctrError:
            raise ImageNotFound(name) from None
        entry = self.repositories().get(ref.familiar_name, {})
        image_id = entry.get(ref.familiar())
        if image_id is None and ref.digest:
            image_id = next((v for k, v in entry.items() if k.endswith("@" + ref.digest)), None)
        if image_id is None:
            raise ImageNotFound(name)
        return image_id

    # --- removal -----------------------------------------------------------------------------------

    def remove_image(self, name, force=False):
        """Untag name; delete the image when no tag is left. Returns a list of (action, what)."""
        image_id = self.resolve(name)
        out = []
        is_id = name.replace("sha256:", "") and image_id[7:].startswith(name.replace("sha256:", ""))
        tags = self.tags_of(image_id)
        if is_id and len(tags) > 1 and not force:
            raise PyctrError(f"image {name} is referenced in multiple repositories ({', '.join(tags)}); "
                             f"use --force")
        targets = tags if is_id else [t for t in tags if t == _ref.parse(name).familiar()]
        for t in targets:
            self.untag(_ref.parse(t))
            out.append(("Untagged", t))
        if not self.tags_of(image_id):
            self._delete_image(image_id)
            out.append(("Deleted", image_id))
        return out

    def _delete_image(self, image_id):
        hexpart = _digest.split(image_id)[1]
        try:
            os.unlink(os.path.join(self.configs, hexpart))
        except FileNotFoundError:
            pass
        rmtree(os.path.join(self.meta, hexpart))

    def prune(self, all_images=False):
        """Delete untagged images (all unused with all_images), then layers and blobs nothing uses."""
        removed = []
        tagged = {v for entry in self.repositories().values() for v in entry.values()}
        for image_id in self.image_ids():
            if image_id not in tagged:
                self._delete_image(image_id)
                removed.append(("Deleted", image_id))
        used = set()
        for image_id in self.image_ids():
            used.update(self.chain(image_id))
        for m in self.layerdb.list_mounts():
            c = m["parent"]
            while c:
                used.add(c)
                info = self.layerdb.get(c)
                c = info["parent"] if info else ""
        # Parents of a used layer are used: chains are prefixes, already covered.
        for chain in self.layerdb.all():
            if chain not in used:
                info = self.layerdb.get(chain)
                self.layerdb.remove(chain)
                self.overlay.remove(info["cache-id"])
                removed.append(("Deleted layer", chain))
        keep = set()
        for image_id in self.image_ids():
            keep.update(self.blobs_of(image_id))
        for name in os.listdir(self.content.blobs):
            if "sha256:" + name not in keep:
                self.content.delete("sha256:" + name)
        return removed

    def blobs_of(self, image_id):
        """Digests of the content-store blobs an image needs: manifest, config, layer blobs."""
        out = {image_id}
        m = self.manifest_digest(image_id)
        if m and self.content.has(m):
            out.add(m)
            out.update(self.layer_blobs(image_id))
        return out

    def layer_blobs(self, image_id):
        """Digests of the image's layer blobs, bottom first, from its manifest ([] without one)."""
        m = self.manifest_digest(image_id)
        if not m or not self.content.has(m):
            return []
        return [layer["digest"] for layer in json.loads(self.content.read(m)).get("layers", [])]
