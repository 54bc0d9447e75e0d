"""`commit`: a container's changes as a new image. The layer is a tar of its upper dir (whiteouts
as `.wh.` entries, opaque directories as `.wh..wh..opq`, runtime stubs left out), stored like any
layer (content store blob + layerdb, so save/push work); the config is the image's with the
container's config merged and -c changes applied (Docker's daemon/commit.go merge), and a history
entry. A running container is paused meanwhile unless --pause=false (Docker's default)."""
import json
import os
import time

from pyctr.container.errors import CommandError

# the container config fields an image config carries (moby's container.Config)
CONFIG_KEYS = ("Hostname", "Domainname", "User", "AttachStdin", "AttachStdout", "AttachStderr", "ExposedPorts",
               "Tty", "OpenStdin", "StdinOnce", "Env", "Cmd", "Healthcheck", "ArgsEscaped", "Image", "Volumes",
               "WorkingDir", "Entrypoint", "NetworkDisabled", "MacAddress", "OnBuild", "Labels", "StopSignal",
               "StopTimeout", "Shell")


def _now():
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e9):09d}Z"


def merged_config(image_config, container_config, changes):
    """Docker's merge: the container's config (its -e, its command...) over the image's, then the
    -c changes; what neither sets stays the image's."""
    from pyctr.container.changes import apply_changes
    cfg = dict(image_config or {})
    for key in CONFIG_KEYS:
        if key in (container_config or {}):
            cfg[key] = container_config[key]
    return apply_changes(cfg, changes)


def write_layer(fs, out):
    """The container's changes as a layer tar on out; returns the number of entries."""
    from pyctr.fs.tarwrite import TarWriter
    stubs = fs.stubs()

    def skip(path, st):
        import stat
        return path in stubs and (stat.S_ISDIR(st.st_mode) or (stat.S_ISREG(st.st_mode) and st.st_size == 0))
    fd = os.open(fs.upper, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    tw = TarWriter(out)
    try:
        tw.add_tree(fd, skip=skip, overlay=True)
    finally:
        tw.close()
        os.close(fd)
    return tw.count


def commit(ctx, cid, repo_tag=None, changes=(), message="", author="", pause=True):
    """Returns the new image id (sha256:...)."""
    from pyctr.container import lifecycle
    from pyctr.container.fsview import ContainerFS
    from pyctr.image import reference
    from pyctr.image.archive import _ingest_file, _register
    if repo_tag:
        try:
            ref = reference.parse(repo_tag)
        except Exception as e:  # InvalidReference and friends: Docker's wording
            raise CommandError(f"invalid reference format: {e}") from None
        if ref.digest:
            raise CommandError("invalid reference format: a commit cannot be tagged with a digest")
    cs = ctx.containers
    rec = cs.load(cid)
    images = ctx.images
    base = images.config(rec["Image"])
    new_config = merged_config(base.get("config") or {}, rec.get("Config") or {}, changes)
    fs = ContainerFS(ctx, rec)
    paused = False
    if pause and fs.running:
        try:
            lifecycle.pause(ctx, cid)
            paused = True
        except CommandError:
            paused = False   # already paused (or stopped meanwhile): commit as it is
    tmp = os.path.join(images.overlay.tmp, f"commit-{cid[:12]}-{os.getpid()}.tar")
    try:
        with open(tmp, "w+b") as f:
            entries = write_layer(fs, f)
            if paused:
                lifecycle.pause(ctx, cid, resume=True)
                paused = False
            f.seek(0)
            with images:
                base_blobs = images.layer_blobs(rec["Image"])
                diff_ids = list((base.get("rootfs") or {}).get("diff_ids") or [])
                if len(base_blobs) != len(diff_ids):
                    raise CommandError(f"image {rec['Image'][:19]}: its layer blobs are not in the store "
                                       f"(pulled with --no-unpack?); cannot commit on top of it")
                empty = entries == 0
                layer_digest = None if empty else _ingest_file(images, f, "layer")
                now = _now()
                history = list(base.get("history") or [])
                history.append({"created": now, "created_by": " ".join(rec["Config"].get("Cmd") or []),
                                **({"author": author} if author else {}), **({"comment": message} if message else {}),
                                **({"empty_layer": True} if empty else {})})
                config = {k: v for k, v in base.items() if k not in ("config", "rootfs", "history", "created",
                                                                    "container", "container_config", "author",
                                                                    "comment")}
                config.update({"architecture": base.get("architecture", "amd64"), "os": base.get("os", "linux"),
                               "author": author or None, "created": now, "container": cid,
                               "container_config": rec.get("Config") or {}, "config": new_config,
                               "rootfs": {"type": "layers", "diff_ids": diff_ids + ([] if empty else [layer_digest])},
                               "history": history})
                if message:
                    config["comment"] = message   # Docker's image.Image Comment (inspect shows it)
                if not author:
                    config.pop("author")
                config_bytes = json.dumps(config, separators=(",", ":")).encode()
                image_id = _register(images, config_bytes, base_blobs + ([] if empty else [layer_digest]),
                                     [repo_tag] if repo_tag else [], f"container {cid[:12]}")
    finally:
        if paused:
            lifecycle.pause(ctx, cid, resume=True)
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
    from pyctr.container import events
    events.emit(ctx, "commit", rec)
    return image_id
