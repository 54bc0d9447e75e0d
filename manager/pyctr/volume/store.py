"""Named volumes in Docker's layout, local driver only:

    volumes/<name>/_data          the volume's content (what containers mount)
    volumes/<name>/volume.json    Docker's inspect fields: CreatedAt, Labels, Options (pyctr's file)
    volumes/lock                  the store's flock, held by every change
    volumes/.new-* .gone-*        a create or remove a SIGKILL interrupted: removed at the next lock

A volume appears whole (built under .new-<name>-<pid>, renamed into place) and disappears whole
(renamed to .gone-*, then deleted), so a killed command never leaves half a volume. Which volumes
containers use is the container store's business: the caller passes `users`, a callable returning
{volume name: [container ids]}, so this module never reads container records.

`-o` options of the local driver: `type=tmpfs` (device=tmpfs, o=size=/mode=/uid=/gid=/nr_inodes=)
and binds (`type=none,o=bind,device=/abs/dir`) are mounted on _data when a container uses the
volume (ensure_mounted) and unmounted by rm/prune; other types (nfs, block devices) are refused.
"""
import json
import os
import re
import time

from pyctr.volume.errors import NoSuchVolume, VolumeError, VolumeInUse

NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")
ANONYMOUS_LABEL = "com.docker.volume.anonymous"
OPTION_KEYS = ("type", "device", "o")
TMPFS_OPTIONS = re.compile(r"^(size=[0-9]+[kKmMgG%]?|mode=[0-7]{1,4}|uid=[0-9]+|gid=[0-9]+|nr_inodes=[0-9]+[kKmMgG]?"
                           r"|noexec|nosuid|nodev|exec|suid|dev|ro|rw)$")
BIND_OPTIONS = {"bind", "rbind", "ro", "rw"}
FILTERS = ("dangling", "name", "label", "driver")


def _now():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _write_json(path, obj):
    from pyctr.container.store import _atomic_write
    _atomic_write(path, json.dumps(obj, indent=1).encode())


class VolumeStore:
    def __init__(self, root, users=None, guard=None):
        """users() -> {volume name: [container ids]}; guard: a lock held around rm and prune so that
        no container takes a volume between the check and the removal (the container store's: a
        create holds it from volume lookup to record)."""
        import contextlib
        self.root = os.path.abspath(root)
        self.base = os.path.join(self.root, "volumes")
        os.makedirs(self.base, mode=0o701, exist_ok=True)
        self.users = users or dict
        self.guard = guard or contextlib.nullcontext()
        from pyctr.container.store import Lock
        self._lock = Lock(os.path.join(self.base, "lock"))

    # --- locking and recovery ------------------------------------------------------------------------
    def __enter__(self):
        self._lock.__enter__()
        if self._lock.depth == 1:
            self._recover()
        return self

    def __exit__(self, *exc):
        self._lock.__exit__(*exc)

    def _recover(self):
        for n in os.listdir(self.base):
            if n.startswith((".new-", ".gone-")):
                self._delete_tree(os.path.join(self.base, n))

    # --- paths -------------------------------------------------------------------------------------------
    def dir(self, name):
        return os.path.join(self.base, name)

    def mountpoint(self, name):
        return os.path.join(self.base, name, "_data")

    def names(self):
        return sorted(n for n in os.listdir(self.base)
                      if NAME_RE.match(n) and os.path.exists(os.path.join(self.base, n, "volume.json")))

    # --- create / get ------------------------------------------------------------------------------------
    def create(self, name=None, driver="local", labels=None, options=None):
        """Docker's `volume create`: returns (volume, created). An existing name is returned as it is
        (Docker ignores the new labels and options then)."""
        from pyctr.container.names import new_id
        anonymous = not name
        name = name or new_id()
        check_name(name, "create")
        if driver != "local":
            raise VolumeError(f"create {name}: error looking up volume plugin {driver}: plugin \"{driver}\" not found")
        options = dict(options or {})
        check_options(name, options)
        labels = dict(labels or {})
        if anonymous:
            labels.setdefault(ANONYMOUS_LABEL, "")
        with self:
            if os.path.exists(os.path.join(self.dir(name), "volume.json")):
                return self.get(name), False
            tmp = os.path.join(self.base, f".new-{name}-{os.getpid()}")
            os.mkdir(tmp, 0o700)
            try:
                os.chmod(tmp, 0o701)   # Docker's modes: others may traverse to _data, not list
                os.mkdir(os.path.join(tmp, "_data"), 0o700)
                os.chmod(os.path.join(tmp, "_data"), 0o755)
                # maps in Docker's JSON come out sorted by key
                _write_json(os.path.join(tmp, "volume.json"),
                            {"CreatedAt": _now(), "Driver": "local", "Labels": dict(sorted(labels.items())) or None,
                             "Name": name, "Options": dict(sorted(options.items())) or None, "Scope": "local"})
                os.rename(tmp, self.dir(name))
            except BaseException:
                self._delete_tree(tmp)
                raise
        return self.get(name), True

    def get(self, name, verb="get"):
        """Docker's inspect dict of a volume; NoSuchVolume if there is none of that name."""
        if not NAME_RE.match(name or ""):
            raise NoSuchVolume(name, verb)
        try:
            with open(os.path.join(self.dir(name), "volume.json"), "rb") as f:
                meta = json.loads(f.read())
        except (FileNotFoundError, NotADirectoryError):
            raise NoSuchVolume(name, verb) from None
        except ValueError:
            raise VolumeError(f"{verb} {name}: its metadata is unreadable") from None
        return {"CreatedAt": meta.get("CreatedAt", ""), "Driver": "local", "Labels": meta.get("Labels"),
                "Mountpoint": self.mountpoint(name), "Name": name, "Options": meta.get("Options"),
                "Scope": "local"}

    def get_or_create(self, name):
        return self.create(name)[0]

    # --- list --------------------------------------------------------------------------------------------
    def list(self, filters=()):
        """Volumes matching Docker's `volume ls --filter` terms (dangling=, name=, label=k[=v],
        driver=): a repeated key is an OR, different keys an AND."""
        by_key = parse_filters(filters)
        users = self.users() if "dangling" in by_key else {}
        out = []
        for name in self.names():
            try:
                vol = self.get(name)
            except VolumeError:
                continue  # removed meanwhile
            if _matches(vol, by_key, users):
                out.append(vol)
        return out

    # --- remove / prune -----------------------------------------------------------------------------------
    def remove(self, name, force=False):
        """Docker's `volume rm`: in use -> refused even with force; force only silences a missing
        volume."""
        with self.guard, self:
            try:
                self.get(name, "get")
            except NoSuchVolume:
                if force:
                    return
                raise
            users = self.users().get(name) or []
            if users:
                raise VolumeInUse(name, users)
            self._remove(name)

    def _remove(self, name):
        self._unmount(name)
        gone = os.path.join(self.base, f".gone-{name}-{os.getpid()}")
        os.rename(self.dir(name), gone)
        self._delete_tree(gone)

    def prune(self, filters=(), all_volumes=False):
        """Docker 20.10's `volume prune` (Debian's docker.io): every unused local volume without
        driver options (Docker 23+ would keep named ones unless -a; pyctr follows 20.10, and takes
        -a for scripts written for 23+). Returns ([names removed], bytes reclaimed)."""
        by_key = parse_filters(filters, allowed=("label", "label!"))
        removed, reclaimed = [], 0
        with self.guard, self:
            users = self.users()
            for name in self.names():
                try:
                    vol = self.get(name)
                except VolumeError:
                    continue
                if users.get(name) or vol["Options"] or not _matches(vol, by_key, users):
                    continue
                reclaimed += _disk_usage(self.mountpoint(name))
                self._remove(name)
                removed.append(name)
        return removed, reclaimed

    # --- mounts of -o volumes ---------------------------------------------------------------------------
    def ensure_mounted(self, name):
        """Mount a tmpfs or bind volume's source on its _data (once; idempotent); plain volumes
        need nothing. Returns the mountpoint."""
        vol = self.get(name)
        opts = vol["Options"] or {}
        target = self.mountpoint(name)
        if not opts or _is_mountpoint(target):
            return target
        from pyrunc.sys import calls
        kind, device, extra = opts.get("type", ""), opts.get("device", ""), opts.get("o", "")
        try:
            if kind == "tmpfs":
                calls.mount("tmpfs", target, "tmpfs", 0, extra)
            else:
                flags = 0x1000 | (0x4000 if "rbind" in extra.split(",") else 0)  # MS_BIND | MS_REC
                calls.mount(device, target, "", flags, "")
                if "ro" in extra.split(","):
                    calls.mount("", target, "", 0x1000 | 0x20 | 0x1, "")  # MS_BIND|MS_REMOUNT|MS_RDONLY
        except OSError as e:
            raise VolumeError(f"error while mounting volume '{target}': failed to mount local volume: "
                              f"mount {device}:{target}, data: {extra}: {e.strerror.lower()}") from None
        return target

    def _unmount(self, name):
        from pyrunc.sys import calls
        target = self.mountpoint(name)
        while _is_mountpoint(target):
            try:
                calls.umount2(target, 2)  # MNT_DETACH
            except OSError:
                break

    # --- copy-up ------------------------------------------------------------------------------------------
    def copy_up(self, name, rootfs, path):
        """Fill an empty volume from the image's content at path (Docker's populateVolume); nothing
        if the volume has anything in it or the image has no directory there. A tmpfs or bind
        volume must be mounted first (ensure_mounted)."""
        from pyctr.volume.copyup import copy_up
        with self:
            self.get(name)
            return copy_up(rootfs, path, self.mountpoint(name))

    @staticmethod
    def _delete_tree(path):
        from pyctr.fs.remove import remove_tree
        _unmount_below(path)
        remove_tree(path)


# --- validation and filters -------------------------------------------------------------------------------
def check_name(name, verb):
    if len(name) < 2 and NAME_RE.match(name + "x"):
        raise VolumeError(f"{verb} {name}: volume name is too short, names should be at least two "
                          f"alphanumeric characters")
    if not NAME_RE.match(name):
        raise VolumeError(f"{verb} {name}: \"{name}\" includes invalid characters for a local volume name, "
                          f"only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host "
                          f"directory, use absolute path")


def check_options(name, options):
    for key in options:
        if key not in OPTION_KEYS:
            raise VolumeError(f"create {name}: invalid option: \"{key}\"")
    if not options:
        return
    kind, device, extra = options.get("type", ""), options.get("device", ""), options.get("o", "")
    words = [w for w in extra.split(",") if w]
    if kind == "tmpfs":
        bad = [w for w in words if not TMPFS_OPTIONS.match(w)]
        if bad:
            raise VolumeError(f"create {name}: tmpfs volume option {bad[0]!r} is not supported "
                              f"(size=, mode=, uid=, gid=, nr_inodes=, noexec, nosuid, nodev)")
        return
    if kind in ("none", "") and ("bind" in words or "rbind" in words):
        if not device.startswith("/"):
            raise VolumeError(f"create {name}: a bind volume needs device=/absolute/host/path")
        bad = [w for w in words if w not in BIND_OPTIONS]
        if bad:
            raise VolumeError(f"create {name}: bind volume option {bad[0]!r} is not supported (bind, rbind, ro)")
        return
    raise VolumeError(f"create {name}: pyctr's local driver mounts only type=tmpfs volumes and binds "
                      f"(type=none,o=bind,device=/path); type {kind or '(none)'!r} with o={extra!r} is not supported")


def parse_filters(filters, allowed=FILTERS):
    by_key = {}
    for f in filters:
        key, sep, value = f.partition("=")  # `label!=k` partitions as ("label!", "=", "k")
        if not sep or key not in allowed:
            raise VolumeError(f"Invalid filter '{key if sep else f}'")
        if key == "dangling" and value.lower() not in ("true", "false", "1", "0"):
            raise VolumeError(f"Invalid filter 'dangling=[{value}]'")
        by_key.setdefault(key, []).append(value)
    return by_key


def _regex_match(term, name):
    """Docker's filters.Match: the term is a regular expression searched in the name."""
    try:
        return re.search(term, name) is not None
    except re.error:
        return False


def _label_match(labels, term):
    k, sep, v = term.partition("=")
    return k in labels and (not sep or labels[k] == v)


def _matches(vol, by_key, users):
    labels = vol["Labels"] or {}
    for key, values in by_key.items():
        if key == "dangling":
            if not any((value.lower() in ("true", "1")) == (not users.get(vol["Name"])) for value in values):
                return False
        elif key == "name":
            if not any(_regex_match(v, vol["Name"]) for v in values):
                return False
        elif key == "driver":
            if not any(v == vol["Driver"] for v in values):
                return False
        elif key == "label":
            if not all(_label_match(labels, v) for v in values):
                return False
        elif key == "label!":
            if any(_label_match(labels, v) for v in values):
                return False
    return True


def _is_mountpoint(path):
    try:
        st = os.lstat(path)
        parent = os.lstat(os.path.dirname(path))
    except OSError:
        return False
    if st.st_dev != parent.st_dev:
        return True
    from pyctr.container.rootfs import is_mounted
    return is_mounted(path)


def _unmount_below(path):
    """Detach whatever is mounted at or below path (a tmpfs volume being deleted)."""
    from pyrunc.sys import calls
    real = os.path.realpath(path)
    try:
        with open("/proc/self/mountinfo", "rb") as f:
            points = [line.split(b" ", 5)[4].decode(errors="replace") for line in f]
    except OSError:
        return
    for mp in sorted(points, key=len, reverse=True):
        if mp == real or mp.startswith(real + "/"):
            try:
                calls.umount2(mp, 2)
            except OSError:
                pass


def _disk_usage(path):
    """Bytes of the regular files below path (each inode once), walked without following links."""
    total, seen = 0, set()
    stack = [path]
    dev = os.lstat(path).st_dev
    while stack:
        d = stack.pop()
        try:
            entries = list(os.scandir(d))
        except OSError:
            continue
        for e in entries:
            try:
                st = e.stat(follow_symlinks=False)
            except OSError:
                continue
            if e.is_dir(follow_symlinks=False):
                if st.st_dev == dev:
                    stack.append(e.path)
            elif (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_size  # what Docker 20.10 reports: the files' sizes
    return total
