"""Layer metadata keyed by chain id, as Docker's image/overlay2/layerdb/sha256/<chain>/ holds it:
cache-id (the overlay2 dir), diff (diff id), size, parent (parent chain id). Read-write layers of
mounts and bundles live under layerdb/mounts/<name>/{mount-id, parent, target}.

An entry is written into a temp dir and renamed into place: it exists completely or not at all.
"""
import os

from pyctr.image.digest import split
from pyctr.image.fsutil import listdir, rmtree


class LayerDB:
    def __init__(self, root):
        self.base = os.path.join(root, "image", "overlay2", "layerdb")
        self.layers = os.path.join(self.base, "sha256")
        self.mounts = os.path.join(self.base, "mounts")
        self.tmp = os.path.join(self.base, "tmp")

    def create(self):
        for d in (self.layers, self.mounts, self.tmp):
            os.makedirs(d, mode=0o700, exist_ok=True)

    def _dir(self, chain_id):
        return os.path.join(self.layers, split(chain_id)[1])

    def get(self, chain_id):
        d = self._dir(chain_id)
        if not os.path.isdir(d):
            return None
        out = {"chain_id": chain_id}
        for key in ("cache-id", "diff", "size", "parent"):
            try:
                with open(os.path.join(d, key)) as f:
                    out[key] = f.read().strip()
            except FileNotFoundError:
                out[key] = ""
        return out

    def add(self, chain_id, cache_id, diff_id, size, parent):
        tmp = os.path.join(self.tmp, os.urandom(8).hex())
        os.makedirs(tmp)
        for key, value in (("cache-id", cache_id), ("diff", diff_id), ("size", str(size)),
                           ("parent", parent or "")):
            if key == "parent" and not value:
                continue
            with open(os.path.join(tmp, key), "w") as f:
                f.write(value)
        os.rename(tmp, self._dir(chain_id))

    def remove(self, chain_id):
        rmtree(self._dir(chain_id))

    def all(self):
        return ["sha256:" + n for n in listdir(self.layers)]

    # --- rw mounts ---------------------------------------------------------------------------------

    def add_mount(self, name, mount_id, parent_chain, target):
        if not name or "/" in name or name.startswith("."):
            from pyctr.errors import PyctrError
            raise PyctrError(f"invalid mount name {name!r}")
        d = os.path.join(self.mounts, name)
        os.makedirs(d)
        for key, value in (("mount-id", mount_id), ("parent", parent_chain), ("target", target)):
            with open(os.path.join(d, key), "w") as f:
                f.write(value)

    def get_mount(self, name):
        if not name or "/" in name or name.startswith("."):
            return None
        d = os.path.join(self.mounts, name)
        if not os.path.isdir(d):
            return None
        out = {"name": name}
        for key in ("mount-id", "parent", "target"):
            try:
                with open(os.path.join(d, key)) as f:
                    out[key] = f.read()
            except FileNotFoundError:
                out[key] = ""
        return out

    def list_mounts(self):
        return [m for m in (self.get_mount(n) for n in sorted(listdir(self.mounts))) if m]

    def remove_mount(self, name):
        rmtree(os.path.join(self.mounts, name))

    def clean_tmp(self):
        for n in listdir(self.tmp):
            rmtree(os.path.join(self.tmp, n))
