"""`pyctr push`: layer blobs then the config (skipping what the registry has, mounting across
repositories of the same registry when the image came from one), then the manifest last."""
import json

from pyctr.errors import PyctrError


def push(store, client, image_id, ref, out=None, quiet=False, source=None):
    """Push the image under ref; source: the name the user gave it, whose manifest is the one
    pushed (an image pulled as OCI under one tag and as Docker schema2 under another has two)."""
    import sys
    from pyctr.image.verify import check_stored_blob, check_stored_layer
    out = out or sys.stderr
    mdigest = store.manifest_digest(image_id, source or ref.familiar())
    if not mdigest or not store.content.has(mdigest):
        raise PyctrError(f"image {image_id} has no manifest in the store; cannot push it")
    body = store.content.read(mdigest)
    manifest = json.loads(body)
    client.actions = "pull,push"
    client.ping()
    source = store.get_meta(image_id, "source")
    source_repo = None
    if source and source.startswith(ref.domain + "/") and source != ref.name:
        source_repo = source[len(ref.domain) + 1:]
    diff_ids = store.config(image_id)["rootfs"].get("diff_ids") or []
    for i, desc in enumerate(manifest.get("layers", []) + [manifest["config"]]):
        digest = desc["digest"]
        if not store.content.has(digest):
            raise PyctrError(f"blob {digest} of image {image_id} is missing from the content store")
        # what goes out is checked first: its digest, and a layer's diff id
        if i < len(diff_ids):
            check_stored_layer(store, digest, diff_ids[i])
        else:
            check_stored_blob(store, digest)
        if client.has_blob(digest):
            _say(out, quiet, f"{digest[7:19]}: Layer already exists")
            continue
        location = None
        if source_repo:
            mounted, location = client.mount_blob(digest, source_repo)
            if mounted:
                _say(out, quiet, f"{digest[7:19]}: Mounted from {source_repo}")
                continue
        size = store.content.size(digest)
        with open(store.content.path(digest), "rb") as f:
            client.upload_blob(digest, f, size, location)
        _say(out, quiet, f"{digest[7:19]}: Pushed")
    media_type = manifest.get("mediaType") or "application/vnd.oci.image.manifest.v1+json"
    client.put_manifest(ref.ref, body, media_type)
    _say(out, quiet, f"{ref.tag or ref.digest}: digest: {mdigest} size: {len(body)}")
    return mdigest


def _say(out, quiet, text):
    if not quiet:
        out.write(text + "\n")
        out.flush()
