"""save/load (docker-archive, as `docker save`/`podman save` write it, and OCI archives),
import (a rootfs tarball becomes a one-layer image) and export (an image's flattened filesystem)."""
import io
import json
import os
import shutil
import tarfile
import tempfile
import time

from pyctr.errors import PyctrError
from pyctr.image import digest as _digest
from pyctr.image import manifest as _m
from pyctr.image import reference as _ref
from pyctr.image.layer import GZIP_MAGIC, ZSTD_MAGIC, decompressed

_CHUNK = 1 << 20


def _now():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _layer_media_type(path):
    with open(path, "rb") as f:
        head = f.read(4)
    if head.startswith(GZIP_MAGIC):
        return _m.OCI_LAYER_GZIP
    if head.startswith(ZSTD_MAGIC):
        return _m.OCI_LAYER_ZSTD
    return _m.OCI_LAYER


def _ingest_file(store, f, what):
    with store.content.writer(what=what) as w:
        while True:
            chunk = f.read(_CHUNK)
            if not chunk:
                break
            w.write(chunk)
        return w.commit()


def _register(store, config_bytes, layer_digests, tags, source_desc):
    """Apply layer blobs (already in the content store), write an OCI manifest, tag the image."""
    config = json.loads(config_bytes)
    diff_ids = (config.get("rootfs") or {}).get("diff_ids") or []
    if len(diff_ids) != len(layer_digests):
        raise PyctrError(f"{source_desc}: config lists {len(diff_ids)} diff ids for {len(layer_digests)} layers")
    parent = None
    descs = []
    for d, diff_id in zip(layer_digests, diff_ids):
        path = store.content.path(d)
        parent, _ = store.add_layer(parent, lambda p=path: open(p, "rb"), diff_id, what=d)
        descs.append({"mediaType": _layer_media_type(path), "digest": d, "size": store.content.size(d)})
    cfg_digest = store.content.put(config_bytes, what="config")
    manifest = {"schemaVersion": 2, "mediaType": _m.OCI_MANIFEST,
                "config": {"mediaType": _m.OCI_CONFIG, "digest": cfg_digest, "size": len(config_bytes)},
                "layers": descs}
    mbytes = json.dumps(manifest, separators=(",", ":")).encode()
    mdigest = store.content.put(mbytes, what="manifest")
    image_id = store.add_image(config_bytes, mdigest)
    for t in tags:
        store.tag(_ref.parse(t), image_id)
    return image_id


# --- import / export ---------------------------------------------------------------------------------

def _parse_changes(changes):
    """Dockerfile-like --change lines: CMD, ENTRYPOINT, ENV, WORKDIR, USER, EXPOSE, LABEL, VOLUME."""
    cfg = {}
    for line in changes or ():
        word, _, rest = line.strip().partition(" ")
        word, rest = word.upper(), rest.strip()
        if word in ("CMD", "ENTRYPOINT", "VOLUME"):
            try:
                value = json.loads(rest) if rest.startswith("[") else None
            except ValueError:
                value = None
            if value is None:
                value = rest.split() if word == "VOLUME" else ["/bin/sh", "-c", rest]
            if word == "VOLUME":
                cfg.setdefault("Volumes", {}).update({v: {} for v in value})
            else:
                cfg["Cmd" if word == "CMD" else "Entrypoint"] = value
        elif word == "ENV":
            k, sep, v = rest.partition("=")
            if not sep:
                k, _, v = rest.partition(" ")
            cfg.setdefault("Env", []).append(f"{k.strip()}={v.strip()}")
        elif word == "WORKDIR":
            cfg["WorkingDir"] = rest
        elif word == "USER":
            cfg["User"] = rest
        elif word == "EXPOSE":
            cfg.setdefault("ExposedPorts", {}).update({p if "/" in p else p + "/tcp": {} for p in rest.split()})
        elif word == "LABEL":
            k, _, v = rest.partition("=")
            cfg.setdefault("Labels", {})[k.strip()] = v.strip().strip('"')
        else:
            raise PyctrError(f"--change: unsupported instruction {word!r} "
                             f"(CMD, ENTRYPOINT, ENV, WORKDIR, USER, EXPOSE, LABEL, VOLUME)")
    return cfg


def import_tarball(store, src, tag=None, changes=(), message=""):
    """A rootfs tarball (file path or '-', plain/gzip/zstd) -> a one-layer image."""
    import sys
    f = sys.stdin.buffer if src == "-" else open(src, "rb")
    try:
        layer_digest = _ingest_file(store, f, "layer")
    finally:
        if f is not sys.stdin.buffer:
            f.close()
    path = store.content.path(layer_digest)
    if _layer_media_type(path) == _m.OCI_LAYER:
        diff_id = layer_digest
    else:
        import hashlib
        h = hashlib.sha256()
        with open(path, "rb") as raw:
            r = decompressed(raw)
            while True:
                b = r.read(_CHUNK)
                if not b:
                    break
                h.update(b)
        diff_id = "sha256:" + h.hexdigest()
    from pyctr.image.manifest import host_platform
    plat = host_platform()
    now = _now()
    cfg = {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]}
    cfg.update(_parse_changes(changes))
    config = {"architecture": plat["architecture"], "os": "linux", "created": now, "config": cfg,
              "rootfs": {"type": "layers", "diff_ids": [diff_id]},
              "history": [{"created": now, "created_by": "pyctr import" + (f" {src}" if src != "-" else ""),
                           **({"comment": message} if message else {})}]}
    config_bytes = json.dumps(config, separators=(",", ":")).encode()
    return _register(store, config_bytes, [layer_digest], [tag] if tag else [], src)


def export(store, image_id, out):
    """Write the image's flattened filesystem as a tar to the binary stream out."""
    chain = store.chain(image_id)
    if not chain:
        raise PyctrError(f"image {image_id} has no layers")
    from pyctr.image.mount import read_only_view
    from pyctr.image.unpack import ensure_unpacked
    ensure_unpacked(store, image_id)
    with read_only_view(store, chain[-1]) as root:
        with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tf:
            for name in sorted(os.listdir(root)):
                tf.add(os.path.join(root, name), arcname=name, recursive=True)


# --- save / load ---------------------------------------------------------------------------------------

def _uncompressed_layer(store, layer_desc, diff_id, tmpdir):
    """Path of the layer as an uncompressed tar (the blob itself if it is one)."""
    path = store.content.path(layer_desc["digest"])
    if layer_desc["digest"] == diff_id:
        return path
    out = os.path.join(tmpdir, diff_id[7:] + ".tar")
    with open(path, "rb") as raw, open(out, "wb") as dst:
        shutil.copyfileobj(decompressed(raw), dst, _CHUNK)
    return out


FORMATS = ("docker-archive", "oci-archive")


def _save_tags(store, name, image_id):
    """The tags an image is saved under: the name given, or its tags when it was named by id."""
    tags = []
    try:
        ref = _ref.parse(name)
        if not ref.digest and not name.startswith("sha256:") and not _is_id(store, name):
            tags = [ref.familiar()]
    except PyctrError:
        pass
    if not tags and not _is_id(store, name):
        tags = [t for t in store.tags_of(image_id) if "@" not in t]
    return tags


def _image_parts(store, name):
    image_id = store.resolve(name)
    config_bytes = store.config_bytes(image_id)
    diff_ids = json.loads(config_bytes).get("rootfs", {}).get("diff_ids", [])
    mdigest = store.manifest_digest(image_id)
    manifest = json.loads(store.content.read(mdigest)) if mdigest else {"layers": []}
    if len(manifest.get("layers", [])) != len(diff_ids):
        raise PyctrError(f"image {name}: layer blobs are missing from the store; cannot save it")
    return image_id, config_bytes, diff_ids, manifest


def save(store, names, out, fmt="docker-archive"):
    """Write the named images to the binary stream out as a docker-archive or an OCI archive."""
    if fmt not in FORMATS:
        raise PyctrError(f"unknown archive format {fmt!r} (one of {', '.join(FORMATS)})")
    if fmt == "oci-archive":
        return save_oci(store, names, out)
    return save_docker(store, names, out)


def save_docker(store, names, out):
    """docker-archive of the named images: manifest.json, <id>.json, <diffid>/layer.tar, repositories."""
    entries, seen_layers = [], set()
    repositories = {}
    with tempfile.TemporaryDirectory(dir=store.overlay.tmp) as tmpdir, \
            tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tf:
        for name in names:
            image_id, config_bytes, diff_ids, manifest = _image_parts(store, name)
            _add_bytes(tf, f"{image_id[7:]}.json", config_bytes)
            layers = []
            for desc, diff_id in zip(manifest["layers"], diff_ids):
                arc = f"{diff_id[7:]}/layer.tar"
                layers.append(arc)
                if arc in seen_layers:
                    continue
                seen_layers.add(arc)
                _add_bytes(tf, f"{diff_id[7:]}/VERSION", b"1.0")
                _add_bytes(tf, f"{diff_id[7:]}/json", json.dumps({"id": diff_id[7:]}).encode())
                path = _uncompressed_layer(store, desc, diff_id, tmpdir)
                tf.add(path, arcname=arc)
                if path.startswith(tmpdir):
                    os.unlink(path)
            tags = _save_tags(store, name, image_id)
            for t in tags:
                r = _ref.parse(t)
                repositories.setdefault(r.familiar_name, {})[r.tag] = diff_ids[-1][7:] if diff_ids else ""
            entries.append({"Config": f"{image_id[7:]}.json", "RepoTags": tags or None, "Layers": layers})
        _add_bytes(tf, "manifest.json", json.dumps(entries).encode())
        _add_bytes(tf, "repositories", json.dumps(repositories).encode())


_TO_OCI = {_m.DOCKER_CONFIG: _m.OCI_CONFIG, _m.DOCKER_LAYER_GZIP: _m.OCI_LAYER_GZIP,
           "application/vnd.docker.image.rootfs.diff.tar": _m.OCI_LAYER,
           "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip":
               "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"}


def save_oci(store, names, out):
    """An OCI image layout in a tar (what `podman save --format oci-archive` writes): oci-layout,
    index.json with one manifest per name, blobs/sha256/*. Layer blobs go in as stored (compressed
    or not, same digests); a Docker schema2 manifest is rewritten with OCI media types, since an OCI
    layout holds OCI manifests. Each entry is named by `io.containerd.image.name` (the full
    reference, which podman, containerd and Docker read) and `org.opencontainers.image.ref.name`
    (the tag, as containerd and Docker write it)."""
    seen, index = set(), []
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tf:
        _add_bytes(tf, "oci-layout", json.dumps({"imageLayoutVersion": "1.0.0"}).encode())

        def blob_bytes(digest, data):
            if digest not in seen:
                seen.add(digest)
                _add_bytes(tf, "blobs/" + digest.replace(":", "/"), data)

        for name in names:
            image_id, config_bytes, diff_ids, manifest = _image_parts(store, name)
            blob_bytes(image_id, config_bytes)
            layers = []
            for desc in manifest.get("layers", []):
                d = desc["digest"]
                layers.append({**desc, "mediaType": _TO_OCI.get(desc.get("mediaType"),
                                                                desc.get("mediaType") or _m.OCI_LAYER)})
                if d not in seen:
                    seen.add(d)
                    tf.add(store.content.path(d), arcname="blobs/" + d.replace(":", "/"))
            mdigest = store.manifest_digest(image_id)
            if mdigest and manifest.get("mediaType") == _m.OCI_MANIFEST:
                mbytes = store.content.read(mdigest)
            else:
                doc = {"schemaVersion": 2, "mediaType": _m.OCI_MANIFEST,
                       "config": {"mediaType": _m.OCI_CONFIG, "digest": image_id, "size": len(config_bytes)},
                       "layers": layers}
                mbytes = json.dumps(doc, separators=(",", ":")).encode()
                mdigest = _digest.sha256_bytes(mbytes)
            blob_bytes(mdigest, mbytes)
            config = json.loads(config_bytes)
            desc = {"mediaType": _m.OCI_MANIFEST, "digest": mdigest, "size": len(mbytes),
                    "platform": {"architecture": config.get("architecture", "amd64"),
                                 "os": config.get("os", "linux"),
                                 **({"variant": config["variant"]} if config.get("variant") else {})}}
            tags = _save_tags(store, name, image_id)
            if not tags:
                index.append(desc)
            for t in tags:
                r = _ref.parse(t)
                index.append({**desc, "annotations": {"io.containerd.image.name": str(r),
                                                      "org.opencontainers.image.ref.name": r.tag or "latest"}})
        _add_bytes(tf, "index.json", json.dumps({"schemaVersion": 2, "mediaType": _m.OCI_INDEX,
                                                 "manifests": index}).encode())


def _is_id(store, name):
    h = name[7:] if name.startswith("sha256:") else name
    return len(h) >= 1 and all(c in "0123456789abcdef" for c in h) and \
        any(i[7:].startswith(h) for i in store.image_ids())


def _add_bytes(tf, name, data):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = int(time.time())
    info.mode = 0o644
    tf.addfile(info, io.BytesIO(data))


def load(store, src):
    """Load a docker-archive or OCI archive (file or '-'); returns [(tag or None, image id)]."""
    import sys
    tmp = None
    if src == "-":
        tmp = tempfile.NamedTemporaryFile(dir=store.overlay.tmp, delete=False)
        shutil.copyfileobj(sys.stdin.buffer, tmp, _CHUNK)
        tmp.close()
        src = tmp.name
    try:
        try:
            tf = tarfile.open(src, mode="r:*")
        except (tarfile.TarError, OSError) as e:
            raise PyctrError(f"{src}: not a readable image archive ({e})") from None
        with tf:
            members = {_norm(m.name): m for m in tf.getmembers()}
            if "manifest.json" in members:
                return _load_docker(store, tf, members, src)
            if "index.json" in members:
                return _load_oci(store, tf, members, src)
            raise PyctrError(f"{src}: neither a docker-archive (manifest.json) nor an OCI archive (index.json)")
    finally:
        if tmp:
            os.unlink(tmp.name)


def _norm(name):
    return "/".join(p for p in name.split("/") if p not in ("", "."))


def _member(tf, members, name, src):
    m = members.get(_norm(name))
    if m is None or not (m.isreg() or m.islnk() or m.issym()):
        raise PyctrError(f"{src}: archive lacks {name!r}")
    f = tf.extractfile(m)
    if f is None:
        raise PyctrError(f"{src}: cannot read {name!r}")
    return f


def _load_docker(store, tf, members, src):
    manifest = json.load(_member(tf, members, "manifest.json", src))
    out = []
    for entry in manifest:
        config_bytes = _member(tf, members, entry["Config"], src).read()
        layer_digests = []
        for name in entry.get("Layers", []):
            layer_digests.append(_ingest_file(store, _member(tf, members, name, src), "layer"))
        tags = entry.get("RepoTags") or []
        image_id = _register(store, config_bytes, layer_digests, tags, src)
        out.extend((t, image_id) for t in tags) if tags else out.append((None, image_id))
    return out


def _load_oci(store, tf, members, src):
    def blob(d):
        return _member(tf, members, "blobs/" + d.replace(":", "/"), src)

    def verified(d):
        data = blob(d).read()
        if _digest.sha256_bytes(data) != d:
            from pyctr.errors import DigestMismatch
            raise DigestMismatch(f"{src}: blob {d}", d, _digest.sha256_bytes(data))
        return data

    index = json.load(_member(tf, members, "index.json", src))
    out = []
    for desc in index.get("manifests", []):
        doc = json.loads(verified(desc["digest"]))
        if desc.get("mediaType") in _m.INDEXES or "manifests" in doc:
            desc = _m.select(doc, _m.host_platform())
            doc = json.loads(verified(desc["digest"]))
        cfg_desc, layers = _m.check_manifest(doc)
        config_bytes = verified(cfg_desc["digest"])
        layer_digests = []
        for layer in layers:
            d = _ingest_file(store, blob(layer["digest"]), "layer")
            if d != layer["digest"]:
                from pyctr.errors import DigestMismatch
                raise DigestMismatch(f"{src}: layer", layer["digest"], d)
            layer_digests.append(d)
        ann = desc.get("annotations") or {}
        name = ann.get("io.containerd.image.name") or ann.get("org.opencontainers.image.ref.name")
        tags = []
        if name:
            # A bare tag (skopeo's oci-archive:file:tag) names no repository: leave the image untagged.
            try:
                if "/" in name or ":" in name:
                    tags = [_ref.parse(name).familiar()]
            except PyctrError:
                tags = []
        image_id = _register(store, config_bytes, layer_digests, tags, src)
        out.extend((t, image_id) for t in tags) if tags else out.append((None, image_id))
    return out
