"""The on-disk image store under --root (default /var/lib/pyctr), Docker's layout where it has one:

    content/blobs/sha256/<hex>                       manifests, configs, layer blobs as fetched
    overlay2/...                                     layer directories (overlay2.py)
    image/overlay2/layerdb/...                       layers by chain id (layerdb.py)
    image/overlay2/imagedb/content/sha256/<id>       image configs; the image id is their digest
    image/overlay2/imagedb/metadata/sha256/<id>/manifest   digest of the manifest that carried it
    image/overlay2/repositories.json                 tags and digests -> image ids, as Docker's

Every command that changes the store holds an exclusive flock on <root>/lock for its duration, and
first removes what an interrupted command left (ingest files, staged layers, unregistered layer
dirs): nothing half-written survives into the next command. A command that fails takes back what
it added (blobs, layers, image records, tags: `with store:` rolls back on an exception, from the
journal, journal.py, which also undoes a command that was killed), so a refused or interrupted pull
or load leaves nothing; a root that such a command created is removed again.

Image records are validated when they are added (imageconfig.py), and a record that is not valid
anyway (written by an older pyctr, or edited) fails only the commands that name that image: listing,
prune and rmi read around it.
"""
import json
import os

from pyctr.errors import DigestMismatch, ImageNotFound, PyctrError
from pyctr.image import digest as _digest
from pyctr.image import imageconfig
from pyctr.image import reference as _ref
from pyctr.image.content import ContentStore
from pyctr.image.fsutil import listdir, rmtree
from pyctr.image.journal import Journal
from pyctr.image.layerdb import LayerDB
from pyctr.image.overlay2 import Overlay2

DEFAULT_ROOT = "/var/lib/pyctr"

# Callables (store) -> image ids that something outside the image store uses (the container store
# registers one): `image prune` keeps those images and their layers.
IN_USE_HOOKS = []


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
        self.allow_devices = allow_devices
        self._lock_fd = None
        self._created_root = False
        self._journal = None
        self._configs = {}
        self.content = ContentStore(self.root)
        self.overlay = Overlay2(self.root)
        self.layerdb = LayerDB(self.root)
        base = os.path.join(self.root, "image", "overlay2")
        self.configs = os.path.join(base, "imagedb", "content", "sha256")
        self.meta = os.path.join(base, "imagedb", "metadata", "sha256")
        self.repos_path = os.path.join(base, "repositories.json")

    # --- locking, recovery, rollback -------------------------------------------------------------

    def lock(self):
        """Take the store's lock, creating the store if needed (lazily: commands that only read
        never create it), and remove what an interrupted command left."""
        import fcntl
        if self._lock_fd is not None:
            return self
        self._created_root = not os.path.isdir(self.root)
        lock_path = os.path.join(self.root, "lock")
        while True:
            os.makedirs(self.root, mode=0o700, exist_ok=True)
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX)
            # the holder before us may have removed the store it created (unlock): lock anew
            try:
                st, cur = os.fstat(fd), os.stat(lock_path)
                if (st.st_dev, st.st_ino) == (cur.st_dev, cur.st_ino):
                    break
            except FileNotFoundError:
                pass
            os.close(fd)
        self._lock_fd = fd
        for part in (self.content, self.overlay, self.layerdb):
            part.create()
        for d in (self.configs, self.meta):
            os.makedirs(d, mode=0o700, exist_ok=True)
        self._journal = Journal(os.path.join(self.root, "uncommitted"))
        self.recover()
        self.content.on_new = lambda digest: self._note("blob", digest)
        return self

    def _note(self, kind, *fields):
        if self._journal is not None:
            self._journal.note(kind, *fields)

    def unlock(self):
        """Release the lock; what the command added stays (rollback() first to undo it)."""
        if self._lock_fd is None:
            return
        self.content.on_new = None
        self._journal.discard()
        self._journal = None
        try:
            if self._created_root and self._empty():
                os.unlink(os.path.join(self.root, "lock"))  # first: a waiter then locks anew
                rmtree(self.root)
        finally:
            os.close(self._lock_fd)
            self._lock_fd = None

    def _empty(self):
        try:
            return not (self.image_ids() or self.layerdb.all() or self.layerdb.list_mounts() or
                        self.content.digests() or self.overlay.ids() or self.repositories())
        except PyctrError:  # an unreadable repositories.json: not ours to remove
            return False

    def __enter__(self):
        return self.lock()

    def __exit__(self, exc_type, *_):
        try:
            if exc_type is not None:
                self.rollback()
        finally:
            self.unlock()

    def rollback(self):
        """Undo what the journal lists: this command's additions (it failed or was interrupted), or
        those of a command killed before it finished (recover)."""
        repos = None
        for kind, *fields in reversed(self._journal.entries()):
            if kind == "tag" and len(fields) == 3:
                repo, key, previous = fields
                repos = repos if repos is not None else self.repositories()
                entry = repos.setdefault(repo, {})
                if previous is None:
                    entry.pop(key, None)
                else:
                    entry[key] = previous
                if not entry:
                    repos.pop(repo, None)
            elif kind == "image" and fields:
                self._delete_image(fields[0])
            elif kind == "layer" and len(fields) == 2:
                info = self.layerdb.get(fields[0])
                if info and info["cache-id"] == fields[1]:
                    self.layerdb.remove(fields[0])
                self.overlay.remove(fields[1])
            elif kind == "blob" and fields:
                self.content.delete(fields[0])
        if repos is not None:
            self._save_repositories(repos)
        self._journal.discard()

    def recover(self):
        """Remove leftovers of an interrupted command (we hold the lock: nobody else is writing):
        what its journal lists, then whatever half-written files and dirs it left."""
        self.rollback()
        self.content.clean_ingest()
        self.layerdb.clean_tmp()
        for n in listdir(self.overlay.tmp):
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
        """Apply one layer on top of parent_chain; returns (chain_id, diff_id). A layer the store
        has by chain id is shared, once the blob proves to hold that diff id (a blob that merely
        claims a layer the store has would otherwise be served by save and push)."""
        if expected_diff_id:
            chain = _digest.chain_ids([parent_chain, expected_diff_id])[1] if parent_chain else expected_diff_id
            if self.layerdb.get(chain):
                from pyctr.image.verify import check_diff_id
                with opener() as f:
                    check_diff_id(f, expected_diff_id, what)
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
            self._note("layer", chain, cache_id)
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

    def add_image(self, config_bytes, manifest_digest=None, what="image config"):
        imageconfig.parse(config_bytes, what)
        image_id = _digest.sha256_bytes(config_bytes)
        path = os.path.join(self.configs, _digest.split(image_id)[1])
        if not os.path.exists(path):
            self._note("image", image_id)
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
        """The image's config; InvalidConfig (naming the image) for a record that is not valid."""
        if image_id not in self._configs:
            self._configs[image_id] = imageconfig.parse(self.config_bytes(image_id), f"image {image_id}")
        return self._configs[image_id]

    def _ref_manifests(self, image_id):
        try:
            refs = json.loads(self.get_meta(image_id, "manifests") or "{}")
        except ValueError:
            return {}
        return refs if isinstance(refs, dict) else {}

    def manifest_digest(self, image_id, name=None):
        """Digest of the manifest that carried the image: the one pulled under reference name
        when given (one image may come as an OCI manifest under one tag and a Docker schema2 one
        under another), else the last one recorded."""
        if name:
            try:
                key = _ref.parse(name).familiar()
            except PyctrError:
                key = None
            d = self._ref_manifests(image_id).get(key)
            if isinstance(d, str) and self.content.has(d):
                return d
        return self.get_meta(image_id, "manifest")

    def manifest_digests(self, image_id):
        out = {d for d in self._ref_manifests(image_id).values() if isinstance(d, str)}
        default = self.get_meta(image_id, "manifest")
        return sorted(out | ({default} if default else set()))

    def chain(self, image_id):
        return _digest.chain_ids(imageconfig.diff_ids(self.config(image_id)))

    def _chain_or_none(self, image_id):
        try:
            return self.chain(image_id)
        except PyctrError:
            return []

    def image_ids(self):
        return ["sha256:" + n for n in listdir(self.configs)]

    # --- repositories.json -------------------------------------------------------------------------

    def repositories(self):
        try:
            with open(self.repos_path) as f:
                repos = json.load(f).get("Repositories", {})
        except FileNotFoundError:
            return {}
        except (ValueError, AttributeError):
            raise PyctrError(f"{self.repos_path} is not valid; remove or repair it") from None
        return {r: e for r, e in repos.items() if isinstance(e, dict)} if isinstance(repos, dict) else {}

    def _save_repositories(self, repos):
        _atomic_write(self.repos_path, json.dumps({"Repositories": repos}, indent=1).encode())

    def tag(self, ref, image_id, manifest=None):
        """Point ref at image_id; manifest: the digest of the manifest it came with under ref."""
        repos = self.repositories()
        entry = repos.setdefault(ref.familiar_name, {})
        key = ref.familiar()
        self._note("tag", ref.familiar_name, key, entry.get(key))
        entry[key] = image_id
        self._save_repositories(repos)
        refs = self._ref_manifests(image_id)
        if manifest and refs.get(key) != manifest:
            refs[key] = manifest
            self.set_meta(image_id, "manifests", json.dumps(refs))

    def untag(self, ref):
        repos = self.repositories()
        entry = repos.get(ref.familiar_name, {})
        image_id = entry.pop(ref.familiar(), None)
        if not entry:
            repos.pop(ref.familiar_name, None)
        self._save_repositories(repos)
        if image_id:
            refs = self._ref_manifests(image_id)
            if refs.pop(ref.familiar(), None):
                self.set_meta(image_id, "manifests", json.dumps(refs))
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

    def images_in_use(self):
        """Images that something uses: those under a pyctr mount or bundle, and those the
        IN_USE_HOOKS name (containers)."""
        tops = {m["parent"] for m in self.layerdb.list_mounts()}
        used = {i for i in self.image_ids() if (self._chain_or_none(i) or [None])[-1] in tops}
        for hook in IN_USE_HOOKS:
            used.update(hook(self))
        return used

    def remove_image(self, name, force=False):
        """Untag name; delete the image when no tag is left, and then the layers and blobs no
        other image shares (as `docker rmi`). Returns a list of (action, what)."""
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
            out += [("Deleted", c) for _, c in self._collect_garbage()]
        return out

    def _delete_image(self, image_id):
        hexpart = _digest.split(image_id)[1]
        try:
            os.unlink(os.path.join(self.configs, hexpart))
        except FileNotFoundError:
            pass
        self._configs.pop(image_id, None)
        rmtree(os.path.join(self.meta, hexpart))

    def prune(self, all_images=False):
        """Delete untagged images (with all_images: every image nothing uses, tagged or not), then
        the layers and blobs no image or mount uses."""
        removed = []
        in_use = self.images_in_use()
        tagged = {v for entry in self.repositories().values() for v in entry.values()}
        for image_id in self.image_ids():
            if image_id in in_use or (image_id in tagged and not all_images):
                continue
            for t in self.tags_of(image_id):
                self.untag(_ref.parse(t))
                removed.append(("Untagged", t))
            self._delete_image(image_id)
            removed.append(("Deleted", image_id))
        return removed + self._collect_garbage()

    def _collect_garbage(self):
        """Remove the layers no image or mount uses, then the blobs no image needs; returns
        [("Deleted layer", chain id)]."""
        removed = []
        used = set()
        for image_id in self.image_ids():
            used.update(self._chain_or_none(image_id))
        for m in self.layerdb.list_mounts():
            c = m["parent"]
            while c and c not in used:
                used.add(c)
                info = self.layerdb.get(c)
                c = info["parent"] if info else ""
        for chain in self.layerdb.all():
            if chain not in used:
                info = self.layerdb.get(chain)
                self.layerdb.remove(chain)
                self.overlay.remove(info["cache-id"])
                removed.append(("Deleted layer", chain))
        keep = set()
        for image_id in self.image_ids():
            keep.update(self.blobs_of(image_id))
        for digest in self.content.digests():
            if digest not in keep:
                self.content.delete(digest)
        return removed

    def blobs_of(self, image_id):
        """Digests of the content-store blobs an image needs: manifests, config, layer blobs."""
        out = {image_id}
        for m in self.manifest_digests(image_id):
            if self.content.has(m):
                out.add(m)
                out.update(self.layer_blobs(image_id, m))
        return out

    def layer_blobs(self, image_id, manifest_digest=None):
        """Digests of the image's layer blobs, bottom first, from its manifest ([] without one)."""
        m = manifest_digest or self.manifest_digest(image_id)
        if not m or not self.content.has(m):
            return []
        try:
            layers = json.loads(self.content.read(m)).get("layers", [])
            return [layer["digest"] for layer in layers if isinstance(layer.get("digest"), str)]
        except (ValueError, AttributeError, TypeError):
            return []
