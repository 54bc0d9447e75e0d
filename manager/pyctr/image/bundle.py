"""`pyctr bundle IMAGE DIR`: DIR/rootfs is an overlay of the image with a fresh upper layer, and
DIR/config.json is pyrunc's default spec filled from the image config (Entrypoint + Cmd, Env,
WorkingDir, User, Volumes), ready for `pyrunc run` or `runc run`."""
import errno
import hashlib
import json
import os

from pyctr.errors import PyctrError


def mount_name(bundle_dir):
    return "bundle-" + hashlib.sha256(os.path.abspath(bundle_dir).encode()).hexdigest()[:16]


def _read_in_root(rootfs, path):
    """Read a file of the image without following its symlinks out of the rootfs."""
    from pyrunc.sys import calls
    from pyrunc.sys import consts
    try:
        root = os.open(rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return ""
    try:
        # O_NONBLOCK: a FIFO planted by the image must not hang the open; only a regular file is read
        fd = calls.openat2(root, path.lstrip("/"), os.O_RDONLY | os.O_NONBLOCK, 0,
                           consts.RESOLVE_IN_ROOT | consts.RESOLVE_NO_MAGICLINKS)
    except OSError:
        return ""
    finally:
        os.close(root)
    import stat
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        return ""
    with open(fd, "rb") as f:
        return f.read(1 << 20).decode("utf-8", "replace")


def resolve_user(rootfs, user):
    """Docker's USER forms: name, uid, name:group, uid:gid -> (uid, gid, additional gids)."""
    user = user or ""
    name, _, group = user.partition(":")
    passwd = [line.split(":") for line in _read_in_root(rootfs, "/etc/passwd").splitlines()]
    groups = [line.split(":") for line in _read_in_root(rootfs, "/etc/group").splitlines()]
    uid, gid, username = 0, 0, "root"
    if name:
        entry = next((p for p in passwd if len(p) >= 4 and (p[0] == name or p[2] == name)), None)
        if entry:
            uid, gid, username = int(entry[2]), int(entry[3]), entry[0]
        elif name.isdigit():
            uid, gid, username = int(name), 0, None
        else:
            raise PyctrError(f"unable to find user {name}: no matching entries in the image's /etc/passwd")
    else:
        entry = next((p for p in passwd if len(p) >= 4 and p[2] == "0"), None)
        if entry:
            gid = int(entry[3])
    if group:
        g = next((x for x in groups if len(x) >= 3 and (x[0] == group or x[2] == group)), None)
        if g:
            gid = int(g[2])
        elif group.isdigit():
            gid = int(group)
        else:
            raise PyctrError(f"unable to find group {group}: no matching entries in the image's /etc/group")
    extra = []
    if username and not group:
        for g in groups:
            if len(g) >= 4 and username in g[3].split(",") and g[2].isdigit() and int(g[2]) != gid:
                extra.append(int(g[2]))
    return uid, gid, extra


def _words(value):
    """Entrypoint/Cmd as a list: Docker's strslice takes a lone string as a one-word command."""
    if isinstance(value, str):
        return [value]
    return list(value or [])


def make_config(image_config, rootfs, args=None, terminal=False, volumes_dir=None):
    from pyrunc.spec.template import default_config
    cfg = image_config.get("config") or {}
    entrypoint = _words(cfg.get("Entrypoint"))
    cmd = list(args) if args else _words(cfg.get("Cmd"))
    argv = list(entrypoint) + list(cmd)
    if not argv:
        raise PyctrError("no command: the image has neither Entrypoint nor Cmd; give one after the directory")
    spec = default_config(args=argv, terminal=terminal)
    env = list(cfg.get("Env") or [])
    if not any(e.startswith("PATH=") for e in env):
        env.insert(0, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    if terminal and not any(e.startswith("TERM=") for e in env):
        env.append("TERM=xterm")
    spec["process"]["env"] = env
    spec["process"]["cwd"] = cfg.get("WorkingDir") or "/"
    uid, gid, extra = resolve_user(rootfs, cfg.get("User"))
    spec["process"]["user"] = {"uid": uid, "gid": gid, **({"additionalGids": extra} if extra else {})}
    spec["root"] = {"path": "rootfs", "readonly": False}
    if volumes_dir:
        for i, dest in enumerate(sorted(cfg.get("Volumes") or {})):
            src = os.path.join(volumes_dir, f"{i}")
            os.makedirs(src, exist_ok=True)
            spec["mounts"].append({"destination": dest, "type": "bind", "source": src,
                                   "options": ["rbind", "rw"]})
    labels = cfg.get("Labels") or {}
    if labels:
        spec["annotations"] = {str(k): str(v) for k, v in labels.items()}
    return spec


def _make_dirs(path):
    """os.makedirs, returning the directories it created, topmost first."""
    made = []
    while not os.path.isdir(path):
        made.append(path)
        path = os.path.dirname(path)
    for d in reversed(made):
        os.mkdir(d, 0o755)
    return list(reversed(made))


def make_bundle(store, image_id, bundle_dir, args=None, terminal=False):
    """Make the bundle; if that fails, whatever it created (directories, mount, upper layer) is
    removed again and DIR is as it was."""
    from pyctr.image.mount import mount_rw, umount
    bundle_dir = os.path.abspath(bundle_dir)
    rootfs = os.path.join(bundle_dir, "rootfs")
    if os.path.exists(os.path.join(bundle_dir, "config.json")):
        raise PyctrError(f"{bundle_dir} already holds a config.json")
    try:
        if os.listdir(rootfs):
            raise PyctrError(f"{rootfs} is not empty")
    except OSError as e:
        if e.errno not in (errno.ENOENT, errno.ENOTDIR):
            raise
    made = []
    try:
        made = _make_dirs(rootfs)
        name = mount_name(bundle_dir)
        mount_rw(store, image_id, name, rootfs)
        volumes = os.path.join(bundle_dir, "volumes")
        had_volumes = os.path.isdir(volumes)
        try:
            spec = make_config(store.config(image_id), rootfs, args, terminal, volumes)
            tmp = os.path.join(bundle_dir, ".config.json.tmp")
            with open(tmp, "w") as f:
                json.dump(spec, f, indent="\t")
            os.rename(tmp, os.path.join(bundle_dir, "config.json"))
        except BaseException:
            umount(store, name)
            if not had_volumes:
                from pyctr.image.fsutil import rmtree
                rmtree(volumes)
            raise
    except BaseException:
        for d in reversed(made):
            try:
                os.rmdir(d)
            except OSError:
                break
        raise
    return bundle_dir


def remove_bundle(store, bundle_dir):
    """Unmount DIR/rootfs and delete its upper layer (the bundle's config.json stays)."""
    from pyctr.image.mount import umount
    return umount(store, mount_name(bundle_dir))
