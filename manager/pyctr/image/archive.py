"""save/load (docker-archive, as `docker save`/`podman save` write it, and OCI archives),
import (a rootfs tarball becomes a one-layer image) and export (an image's flattened filesystem)."""
import errno
import io
import json
import os
import shutil
import tarfile
import tempfile
import time
import zlib

from pyctr.errors import PyctrError
from pyctr.image import digest as _digest
from pyctr.image import imageconfig
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


def _ingest_file(store, f, what, declared=None):
    """File a blob read from f into the content store; declared: its size if the archive says,
    checked against the free space before a byte is written."""
    from pyctr.image.fsutil import NoSpace, ensure_free
    if declared is not None:
        ensure_free(store.content.ingest, declared, what)
    try:
        with store.content.writer(what=what) as w:
            while True:
                chunk = f.read(_CHUNK)
                if not chunk:
                    break
                w.write(chunk)
            return w.commit()
    except OSError as e:
        if e.errno == errno.ENOSPC:
            raise NoSpace(f"{what}: the store's filesystem is full ({store.root}); nothing was stored") from None
        raise


def _register(store, config_bytes, layer_digests, tags, source_desc, applied=None):
    """Apply layer blobs (already in the content store), write an OCI manifest, tag the image.
    applied: the chain id of the one layer this command has just applied from the first blob."""
    config = imageconfig.parse(config_bytes, source_desc)
    diff_ids = imageconfig.diff_ids(config)
    if len(diff_ids) != len(layer_digests):
        raise PyctrError(f"{source_desc}: config lists {len(diff_ids)} diff ids for {len(layer_digests)} layers")
    parent = None
    descs = []
    for d, diff_id in zip(layer_digests, diff_ids):
        path = store.content.path(d)
        if applied and parent is None and applied == diff_id:
            parent = applied
        else:
            parent, _ = store.add_layer(parent, lambda p=path: open(p, "rb"), diff_id, what=d)
        descs.append({"mediaType": _layer_media_type(path), "digest": d, "size": store.content.size(d)})
    cfg_digest = store.content.put(config_bytes, what="config")
    manifest = {"schemaVersion": 2, "mediaType": _m.OCI_MANIFEST,
                "config": {"mediaType": _m.OCI_CONFIG, "digest": cfg_digest, "size": len(config_bytes)},
                "layers": descs}
    mbytes = json.dumps(manifest, separators=(",", ":")).encode()
    mdigest = store.content.put(mbytes, what="manifest")
    image_id = store.add_image(config_bytes, mdigest, what=source_desc)
    for t in tags:
        store.tag(_ref.parse(t), image_id, manifest=mdigest)
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
    try:
        f = sys.stdin.buffer if src == "-" else open(src, "rb")
    except OSError as e:
        raise PyctrError(f"cannot open {src}: {e.strerror}") from None
    try:
        declared = None if src == "-" else os.fstat(f.fileno()).st_size
        layer_digest = _ingest_file(store, f, "layer", declared)
    finally:
        if f is not sys.stdin.buffer:
            f.close()
    # applied first, its diff id measured as it goes: a bomb fails at its first entry, not after a
    # hashing pass over all it would inflate to
    path = store.content.path(layer_digest)
    chain, diff_id = store.add_layer(None, lambda: open(path, "rb"), what=src)
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
    return _register(store, config_bytes, [layer_digest], [tag] if tag else [], src, applied=chain)


def export(store, image_id, out):
    """Write the image's flattened filesystem as a tar to the binary stream out."""
    chain = store.chain(image_id)
    if not chain:
        raise PyctrError(f"image {image_id} has no layers")
    from pyctr.image.export import write_tree
    from pyctr.image.mount import read_only_view
    from pyctr.image.unpack import ensure_unpacked
    ensure_unpacked(store, image_id)
    with read_only_view(store, chain[-1]) as root:
        # a single layer is its own diff dir, with whiteouts in their overlay form: they hide
        # nothing there and are left out, as overlayfs would show it
        write_tree(root, out, raw_layer=len(chain) == 1)


# --- save / load ---------------------------------------------------------------------------------------

def _add_layer_tar(store, tf, arcname, layer_desc, diff_id, chain):
    """Add the layer as an uncompressed tar, verified against its diff id as it streams."""
    from pyctr.image.verify import add_verified, check_stored_layer
    digest = layer_desc["digest"]
    path = store.content.path(digest)
    size = _layer_size(store, digest, chain)
    if size is None:
        size = check_stored_layer(store, digest, diff_id)
    try:
        raw = open(path, "rb")
    except FileNotFoundError:
        raise PyctrError(f"layer blob {digest} is missing from the content store") from None
    with raw:
        add_verified(tf, arcname, decompressed(raw), size, diff_id, f"layer {diff_id} (blob {digest})")


def _layer_size(store, blob_digest, chain):
    """The layer's uncompressed size if known without reading it: an uncompressed blob's, or the
    one the layer store measured when it applied the layer (None if not unpacked)."""
    info = store.layerdb.get(chain)
    if info and info["size"].isdigit():
        return int(info["size"])
    return None


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
    """(image id, config bytes, diff ids, chain ids, manifest digest, manifest) of the image name
    refers to, its manifest the one it was pulled with under that name."""
    image_id = store.resolve(name)
    config_bytes = store.config_bytes(image_id)
    diff_ids = imageconfig.diff_ids(store.config(image_id))
    mdigest = store.manifest_digest(image_id, name)
    manifest = {"layers": []}
    if mdigest:
        try:
            manifest = json.loads(store.content.read(mdigest))
            layers = manifest.get("layers")
            if not isinstance(layers, list) or not all(isinstance(x, dict) and isinstance(x.get("digest"), str)
                                                       for x in layers):
                raise ValueError
        except (ValueError, AttributeError):
            raise PyctrError(f"image {name}: its manifest {mdigest} in the store is not valid") from None
    if len(manifest.get("layers", [])) != len(diff_ids):
        raise PyctrError(f"image {name}: layer blobs are missing from the store; cannot save it")
    return image_id, config_bytes, diff_ids, _digest.chain_ids(diff_ids), mdigest, manifest


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
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tf:
        for name in names:
            image_id, config_bytes, diff_ids, chains, _, manifest = _image_parts(store, name)
            _add_bytes(tf, f"{image_id[7:]}.json", config_bytes)
            layers = []
            for desc, diff_id, chain in zip(manifest["layers"], diff_ids, chains):
                arc = f"{diff_id[7:]}/layer.tar"
                layers.append(arc)
                if arc in seen_layers:
                    continue
                seen_layers.add(arc)
                _add_bytes(tf, f"{diff_id[7:]}/VERSION", b"1.0")
                _add_bytes(tf, f"{diff_id[7:]}/json", json.dumps({"id": diff_id[7:]}).encode())
                _add_layer_tar(store, tf, arc, desc, diff_id, chain)
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
            image_id, config_bytes, diff_ids, _, mdigest, manifest = _image_parts(store, name)
            blob_bytes(image_id, config_bytes)
            layers = []
            for desc, diff_id in zip(manifest.get("layers", []), diff_ids):
                d = desc["digest"]
                layers.append({**desc, "mediaType": _TO_OCI.get(desc.get("mediaType"),
                                                                desc.get("mediaType") or _m.OCI_LAYER)})
                if d not in seen:
                    seen.add(d)
                    _add_blob(store, tf, d, diff_id)
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


def _add_blob(store, tf, digest, diff_id):
    """Add a layer blob as stored, once it proved to hold its diff id, hashed again as it goes."""
    from pyctr.image.verify import add_verified, check_stored_layer
    check_stored_layer(store, digest, diff_id)
    with open(store.content.path(digest), "rb") as f:
        add_verified(tf, "blobs/" + digest.replace(":", "/"), f, os.fstat(f.fileno()).st_size, digest,
                     f"layer blob {digest}")


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
    """Load a docker-archive or OCI archive (file or '-'); returns [(tag or None, image id)].
    Everything is checked before the store keeps anything (the caller's `with store` rolls back
    what a refused archive added)."""
    import sys
    tmp = None
    if src == "-":
        from pyctr.image.fsutil import NoSpace
        tmp = tempfile.NamedTemporaryFile(dir=store.overlay.tmp, delete=False)
        try:
            shutil.copyfileobj(sys.stdin.buffer, tmp, _CHUNK)
            tmp.close()
        except OSError as e:
            tmp.close()
            os.unlink(tmp.name)
            if e.errno == errno.ENOSPC:
                raise NoSpace(f"the archive on stdin does not fit on the store's filesystem ({store.root}); "
                              f"nothing was stored") from None
            raise
        src = tmp.name
    try:
        try:
            tf = tarfile.open(src, mode="r:*")
            with tf:
                members = {_norm(m.name): m for m in tf.getmembers()}
                if "manifest.json" in members:
                    return _load_docker(store, tf, members, src)
                if "index.json" in members:
                    return _load_oci(store, tf, members, src)
        except (tarfile.TarError, EOFError, zlib.error) as e:
            raise PyctrError(f"{src}: not a readable image archive ({e})") from None
        except OSError as e:
            if e.errno is None:  # tarfile's own "unexpected end of data", gzip's "not a gzipped file"
                raise PyctrError(f"{src}: not a readable image archive ({e})") from None
            raise
        raise PyctrError(f"{src}: neither a docker-archive (manifest.json) nor an OCI archive (index.json)")
    finally:
        if tmp:
            os.unlink(tmp.name)


def _norm(name):
    return "/".join(p for p in name.split("/") if p not in ("", "."))


def _member(tf, members, name, src):
    if not isinstance(name, str):
        raise PyctrError(f"{src}: an archive entry name is not a string: {json.dumps(name)[:80]}")
    m = members.get(_norm(name))
    seen = 0
    while m is not None and m.issym() and seen < 8:  # a link inside the archive, as docker-archives use
        m = members.get(_norm(os.path.join(os.path.dirname(_norm(name)), m.linkname)))
        seen += 1
    if m is not None and m.islnk():
        m = members.get(_norm(m.linkname))
    if m is None or not m.isreg():
        raise PyctrError(f"{src}: archive lacks {name!r}")
    f = tf.extractfile(m)
    if f is None:
        raise PyctrError(f"{src}: cannot read {name!r}")
    return f, m.size


# the largest manifest or config read from an archive, as skopeo bounds them from a registry
_MAX_JSON = 4 << 20


def _json_member(tf, members, name, src, what):
    f, size = _member(tf, members, name, src)
    if size > _MAX_JSON:
        raise PyctrError(f"{src}: {what} {name!r} is {size} bytes, more than {_MAX_JSON}")
    data = f.read()
    try:
        return data, json.loads(data)
    except (ValueError, RecursionError):
        raise PyctrError(f"{src}: {what} {name!r} is not valid JSON") from None


def _docker_entries(manifest, src):
    """The entries of a docker-archive's manifest.json, each checked for the fields load reads."""
    def bad(why):
        raise PyctrError(f"{src}: manifest.json {why}")

    if not isinstance(manifest, list) or not manifest:
        bad("must be a non-empty list of images")
    for i, entry in enumerate(manifest):
        if not isinstance(entry, dict):
            bad(f"entry {i} is not an object")
        if not isinstance(entry.get("Config"), str) or not entry["Config"]:
            bad(f"entry {i} has no Config file name")
        layers = entry.get("Layers")
        if layers is None:
            layers = entry["Layers"] = []
        if not isinstance(layers, list) or not all(isinstance(x, str) and x for x in layers):
            bad(f"entry {i}: Layers must be a list of file names")
        tags = entry.get("RepoTags") or []
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            bad(f"entry {i}: RepoTags must be a list of names")
        for t in tags:
            _ref.parse(t)  # a clear InvalidReference before anything is stored
    return manifest


def _load_docker(store, tf, members, src):
    _, manifest = _json_member(tf, members, "manifest.json", src, "manifest.json")
    out = []
    for entry in _docker_entries(manifest, src):
        config_bytes, _ = _json_member(tf, members, entry["Config"], src, "image config")
        config = imageconfig.parse(config_bytes, f"{src}: {entry['Config']}")
        imageconfig.check_layer_count(len(entry["Layers"]), src)
        if len(imageconfig.diff_ids(config)) != len(entry["Layers"]):
            raise PyctrError(f"{src}: config lists {len(imageconfig.diff_ids(config))} diff ids for "
                             f"{len(entry['Layers'])} layers")
        layer_digests = []
        for name in entry["Layers"]:
            f, size = _member(tf, members, name, src)
            layer_digests.append(_ingest_file(store, f, f"layer {name}", size))
        tags = entry.get("RepoTags") or []
        image_id = _register(store, config_bytes, layer_digests, tags, src)
        out.extend((t, image_id) for t in tags) if tags else out.append((None, image_id))
    return out


def _descriptor(desc, src, what):
    if not isinstance(desc, dict) or not isinstance(desc.get("digest"), str):
        raise PyctrError(f"{src}: {what} is not a descriptor with a digest")
    _digest.split(desc["digest"])  # a clear error for a malformed or unsupported digest
    return desc


def _load_oci(store, tf, members, src):
    from pyctr.errors import DigestMismatch

    def verified_json(d, what):
        data, doc = _json_member(tf, members, "blobs/" + d.replace(":", "/"), src, what)
        if _digest.sha256_bytes(data) != d:
            raise DigestMismatch(f"{src}: blob {d}", d, _digest.sha256_bytes(data))
        if not isinstance(doc, dict):
            raise PyctrError(f"{src}: {what} {d} is not a JSON object")
        return data, doc

    _, index = _json_member(tf, members, "index.json", src, "index.json")
    manifests = index.get("manifests") if isinstance(index, dict) else None
    if not isinstance(manifests, list) or not manifests:
        raise PyctrError(f"{src}: index.json lists no manifests")
    out = []
    for desc in manifests:
        desc = _descriptor(desc, src, "an index.json entry")
        _, doc = verified_json(desc["digest"], "manifest")
        if desc.get("mediaType") in _m.INDEXES or "manifests" in doc:
            desc = _descriptor(_m.select(doc, _m.host_platform()), src, "a nested index entry")
            _, doc = verified_json(desc["digest"], "manifest")
        layers = doc.get("layers") if doc.get("layers") is not None else []
        if not isinstance(layers, list):
            raise PyctrError(f"{src}: manifest {desc['digest']}: layers must be a list")
        for layer in layers:
            _descriptor(layer, src, f"a layer of manifest {desc['digest']}")
        _descriptor(doc.get("config"), src, f"the config of manifest {desc['digest']}")
        cfg_desc, layers = _m.check_manifest(doc)
        imageconfig.check_layer_count(len(layers), src)
        config_bytes, _ = verified_json(cfg_desc["digest"], "image config")
        config = imageconfig.parse(config_bytes, f"{src}: config {cfg_desc['digest']}")
        if len(imageconfig.diff_ids(config)) != len(layers):
            raise PyctrError(f"{src}: config lists {len(imageconfig.diff_ids(config))} diff ids for "
                             f"{len(layers)} layers")
        layer_digests = []
        for layer in layers:
            f, size = _member(tf, members, "blobs/" + layer["digest"].replace(":", "/"), src)
            d = _ingest_file(store, f, f"layer {layer['digest']}", size)
            if d != layer["digest"]:
                raise DigestMismatch(f"{src}: layer", layer["digest"], d)
            layer_digests.append(d)
        ann = desc.get("annotations") if isinstance(desc.get("annotations"), dict) else {}
        name = ann.get("io.containerd.image.name") or ann.get("org.opencontainers.image.ref.name")
        tags = []
        if isinstance(name, str):
            # A bare tag (skopeo's oci-archive:file:tag) names no repository: leave the image untagged.
            try:
                if "/" in name or ":" in name:
                    tags = [_ref.parse(name).familiar()]
            except PyctrError:
                tags = []
        image_id = _register(store, config_bytes, layer_digests, tags, src)
        out.extend((t, image_id) for t in tags) if tags else out.append((None, image_id))
    return out
