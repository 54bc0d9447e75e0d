"""Helpers for comparing built images: a saved image (docker-archive) flattened into {path: entry}
by applying its layers in order with their whiteouts, and the config fields `docker build` sets."""
import hashlib
import io
import json
import re
import tarfile

CONFIG_FIELDS = ("Cmd", "Entrypoint", "Env", "WorkingDir", "User", "ExposedPorts", "Volumes", "Labels",
                 "StopSignal", "Healthcheck", "OnBuild", "Shell")


def _entry(tf, m):
    kind = {tarfile.DIRTYPE: "dir", tarfile.SYMTYPE: "symlink", tarfile.LNKTYPE: "file"}.get(m.type, "file")
    if m.isfifo():
        kind = "fifo"
    content = None
    if m.isreg():
        content = hashlib.sha256(tf.extractfile(m).read()).hexdigest()
    return {"type": kind, "mode": oct(m.mode & 0o7777), "uid": m.uid, "gid": m.gid,
            "link": m.linkname if m.issym() else None, "content": content}


def flatten(archive_bytes):
    """(config, {path: entry}) of the single image in a docker-archive."""
    outer = tarfile.open(fileobj=io.BytesIO(archive_bytes))
    manifest = json.load(outer.extractfile("manifest.json"))[0]
    config = json.load(outer.extractfile(manifest["Config"]))
    files = {}
    for layer in manifest["Layers"]:
        data = outer.extractfile(layer).read()
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tf:
            hardlinks = []
            for m in tf:
                name = m.name.rstrip("/").lstrip("./") if m.name not in (".", "./") else ""
                if not name:
                    continue
                base = name.rsplit("/", 1)[-1]
                parent = name.rsplit("/", 1)[0] if "/" in name else ""
                if base == ".wh..wh..opq":
                    for p in [p for p in files if p.startswith(parent + "/")]:
                        del files[p]
                    continue
                if base.startswith(".wh."):
                    gone = (parent + "/" if parent else "") + base[4:]
                    for p in [p for p in files if p == gone or p.startswith(gone + "/")]:
                        del files[p]
                    continue
                if m.islnk():
                    hardlinks.append((name, m))
                    continue
                if not m.isdir() and name in files and files[name]["type"] == "dir":
                    for p in [p for p in files if p.startswith(name + "/")]:
                        del files[p]
                files[name] = _entry(tf, m)
            for name, m in hardlinks:
                target = m.linkname.rstrip("/").lstrip("./")
                if target in files:
                    files[name] = dict(files[target])
    return config, files


def config_fields(config):
    c = config.get("config") or {}
    out = {}
    for k in CONFIG_FIELDS:
        v = c.get(k)
        out[k] = v if v not in (None, [], {}, "") else None
    return out


_HASHES = re.compile(r"(file|dir|multi):[0-9a-f]{64}")


def history(config):
    """(created_by with content hashes masked, empty_layer) of every entry."""
    return [(_HASHES.sub(r"\1:*", h.get("created_by", "")), bool(h.get("empty_layer")))
            for h in config.get("history") or []]
