"""The build cache, keyed as Docker's classic builder keys it: the parent image, the step's text
(`created_by`, with the build args a RUN sees and COPY/ADD's content checksum) and the config the
step runs with. A record is one file, <root>/build-cache/<sha256 of the key>, holding the id of the
image the step made; written to a temp name and renamed, so a reader sees it whole or not at all,
and two builds writing the same key both leave a valid record. A record whose image or layers are
gone (rmi, prune) is a miss."""
import hashlib
import json
import os


class Cache:
    def __init__(self, store):
        self.store = store
        self.dir = os.path.join(store.root, "build-cache")
        os.makedirs(self.dir, mode=0o700, exist_ok=True)

    @staticmethod
    def key(parent_id, created_by, config):
        blob = json.dumps([parent_id or "scratch", created_by, config], sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()

    def get(self, key):
        try:
            with open(os.path.join(self.dir, key)) as f:
                image_id = f.read().strip()
        except OSError:
            return None
        from pyctr.errors import PyctrError
        try:
            chain = self.store.chain(image_id)
        except (PyctrError, ValueError, OSError):  # the image is gone or unreadable: a miss
            return None
        if not all(self.store.layerdb.get(c) for c in chain):
            return None
        return image_id

    def put(self, key, image_id):
        path = os.path.join(self.dir, key)
        tmp = f"{path}.tmp-{os.getpid()}-{os.urandom(4).hex()}"
        with open(tmp, "w") as f:
            f.write(image_id)
        os.rename(tmp, path)
