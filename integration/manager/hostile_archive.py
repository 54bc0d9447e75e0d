"""A small builder of image archives and layers, hostile ones included: layer tars from entry lists
(any header field, xattrs), deep trees, sparse files, gzip bombs, image configs with any field
overridden, and docker-archive / OCI-archive tars with any member replaced or missing.
Used by the unit tests (tests/manager) and the integration tests (integration/manager)."""
import gzip
import hashlib
import io
import json
import os
import subprocess
import tarfile
import zlib


def sha(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def layer(*entries, fmt=tarfile.PAX_FORMAT):
    """A layer tar. Each entry is (name, kind) or (name, kind, fields) where kind is file, dir,
    sym, link, chr, fifo and fields sets TarInfo attributes (data= for a file's content,
    xattrs={name: bytes} as SCHILY.xattr records)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
        for name, kind, *rest in entries:
            fields = dict(rest[0]) if rest else {}
            info = tarfile.TarInfo(name)
            info.mode = 0o755 if kind == "dir" else 0o644
            info.mtime = 1_600_000_000
            data = fields.pop("data", b"data" if kind == "file" else b"")
            for key, value in fields.pop("xattrs", {}).items():
                info.pax_headers["SCHILY.xattr." + key] = value.decode("utf-8", "surrogateescape")
            info.type = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE, "sym": tarfile.SYMTYPE,
                         "link": tarfile.LNKTYPE, "chr": tarfile.CHRTYPE, "fifo": tarfile.FIFOTYPE}[kind]
            if kind == "file":
                info.size = len(data)
            for key, value in fields.items():
                setattr(info, key, value)
            tf.addfile(info, io.BytesIO(data) if kind == "file" else None)
    return buf.getvalue()


def deep_tree(depth, name="d"):
    """A layer of directories nested depth levels deep, a file at the bottom."""
    entries = [("/".join([name] * i), "dir") for i in range(1, depth + 1)]
    entries.append(("/".join([name] * depth) + "/bottom", "file", {"data": b"deep\n"}))
    return layer(*entries)


def sparse_tar(workdir, size):
    """A tar (GNU tar --sparse) of a single file of size bytes that are all a hole: a few KiB
    declaring size bytes."""
    src = os.path.join(workdir, "sparse-src")
    os.makedirs(src, exist_ok=True)
    with open(os.path.join(src, "hole"), "wb") as f:
        f.truncate(size)
    out = os.path.join(workdir, "sparse.tar")
    subprocess.run(["tar", "--sparse", "-C", src, "-cf", out, "hole"], check=True)
    os.unlink(os.path.join(src, "hole"))
    os.rmdir(src)
    return out


def gzip_bomb(size, name="zeros"):
    """A gzipped layer holding one file of size zero bytes (about size/1000 bytes compressed)."""
    info = tarfile.TarInfo(name)
    info.size, info.mode = size, 0o644
    header = info.tobuf(tarfile.PAX_FORMAT)
    c = zlib.compressobj(9, zlib.DEFLATED, 31)
    parts = [c.compress(header)]
    zeros = bytes(1 << 20)
    left = size + (-size % 512) + 1024  # content, its padding, the end-of-archive blocks
    while left:
        n = min(left, len(zeros))
        parts.append(c.compress(zeros[:n]))
        left -= n
    parts.append(c.flush())
    return b"".join(parts)


def config(diff_ids, **override):
    """An image config for the layers' diff ids; override replaces (or, with None, removes) fields."""
    cfg = {"architecture": "amd64", "os": "linux", "created": "2024-01-02T03:04:05Z",
           "config": {"Cmd": ["/bin/sh"], "Env": ["PATH=/bin"]},
           "rootfs": {"type": "layers", "diff_ids": list(diff_ids)},
           "history": [{"created": "2024-01-02T03:04:05Z", "created_by": "test"} for _ in diff_ids]}
    for key, value in override.items():
        if value is None:
            cfg.pop(key, None)
        else:
            cfg[key] = value
    return json.dumps(cfg).encode()


def _add(tf, name, data):
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o644, 1_600_000_000
    tf.addfile(info, io.BytesIO(data))


def docker_archive(layers, tags=("hostile/image:1",), config_bytes=None, manifest=None, members=None):
    """A docker-archive (docker save). layers: uncompressed layer tars; config_bytes defaults to a
    valid config for them; manifest replaces manifest.json (any JSON value, or bytes as they are);
    members: {name: bytes or None} added to or (None) left out of the archive."""
    diff_ids = [sha(x) for x in layers]
    config_bytes = config(diff_ids) if config_bytes is None else config_bytes
    files = {"config.json": config_bytes}
    names = []
    for i, data in enumerate(layers):
        files[f"l{i}/layer.tar"] = data
        names.append(f"l{i}/layer.tar")
    if manifest is None:
        manifest = [{"Config": "config.json", "RepoTags": list(tags), "Layers": names}]
    files["manifest.json"] = manifest if isinstance(manifest, bytes) else json.dumps(manifest).encode()
    files.update(members or {})
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, data in files.items():
            if data is not None:
                _add(tf, name, data)
    return buf.getvalue()


def oci_archive(layers, tag="hostile/image:1", config_bytes=None, compress=False):
    """An OCI archive (image layout in a tar) of one image."""
    blobs = [gzip.compress(x, mtime=0) if compress else x for x in layers]
    config_bytes = config([sha(x) for x in layers]) if config_bytes is None else config_bytes
    mt = "application/vnd.oci.image.layer.v1.tar" + ("+gzip" if compress else "")
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                      "digest": sha(config_bytes), "size": len(config_bytes)},
                           "layers": [{"mediaType": mt, "digest": sha(b), "size": len(b)} for b in blobs]}).encode()
    index = {"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sha(manifest), "size": len(manifest),
         "annotations": {"io.containerd.image.name": tag}}]}
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        _add(tf, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        _add(tf, "index.json", json.dumps(index).encode())
        for data in [config_bytes, manifest, *blobs]:
            _add(tf, "blobs/sha256/" + sha(data)[7:], data)
    return buf.getvalue()
