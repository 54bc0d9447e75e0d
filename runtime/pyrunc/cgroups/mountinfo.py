"""Which cgroup hierarchies exist, where they are mounted, and where the caller sits in them.

Pure functions over the text of /proc/self/mountinfo and /proc/self/cgroup (the readers at the
bottom are the only I/O), so every host layout can be unit-tested from a fixture.
"""
import os

from ..errors import StepError

# Superblock options of a v1 cgroup mount that are not controllers. Everything else that is a bare
# word is a controller bound to the hierarchy ("cpu", "memory", ...).
_V1_FLAGS = frozenset(
    {"rw", "ro", "none", "noprefix", "clone_children", "xattr", "cpuset_v2_mode", "favordynmods"}
)


class Hierarchy:
    """One mounted cgroup hierarchy: a v1 hierarchy (controllers and/or a name) or the v2 one."""

    __slots__ = ("fstype", "mountpoint", "root", "controllers", "name")

    def __init__(self, fstype, mountpoint, root="/", controllers=(), name=None):
        self.fstype = fstype              # "cgroup" (v1) or "cgroup2"
        self.mountpoint = mountpoint
        self.root = root                  # the cgroup shown at mountpoint (not "/" for bind mounts)
        self.controllers = list(controllers)
        self.name = name                  # v1 named hierarchy, e.g. "systemd"

    @property
    def version(self):
        return "v2" if self.fstype == "cgroup2" else "v1"

    @property
    def keys(self):
        """The keys this hierarchy has in CgroupManager.paths and in /proc/self/cgroup."""
        if self.version == "v2":
            return [""]
        return self.controllers + ([f"name={self.name}"] if self.name else [])

    def mount_data(self):
        """The mount(2) data that mounts this same hierarchy again."""
        if self.version == "v2":
            return ""
        opts = list(self.controllers)
        if self.name:
            # Without "none", a name-only mount asks for every controller not bound elsewhere.
            opts = (opts or ["none"]) + [f"name={self.name}"]
        return ",".join(opts)

    def to_dict(self):
        return {"fstype": self.fstype, "mountpoint": self.mountpoint, "root": self.root,
                "controllers": self.controllers, "name": self.name}

    @classmethod
    def from_dict(cls, d):
        return cls(d["fstype"], d["mountpoint"], d.get("root", "/"), d.get("controllers", ()),
                   d.get("name"))

    def __eq__(self, other):
        return isinstance(other, Hierarchy) and self.to_dict() == other.to_dict()

    def __repr__(self):
        return f"Hierarchy({self.to_dict()!r})"


def unescape(field):
    """Undo mountinfo's octal escapes (\\040 space, \\011 tab, \\012 newline, \\134 backslash)."""
    if "\\" not in field:
        return field
    out, i = [], 0
    while i < len(field):
        digits = field[i + 1:i + 4]
        if field[i] == "\\" and len(digits) == 3 and all(c in "01234567" for c in digits):
            out.append(chr(int(digits, 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def parse_mountinfo(text):
    """Every mount as (root, mountpoint, fstype, super_options), in mountinfo (= mount) order."""
    mounts = []
    for line in text.splitlines():
        fields = line.split()
        if not fields:
            continue
        try:
            sep = fields.index("-", 6)
            root, mountpoint = unescape(fields[3]), unescape(fields[4])
            fstype = fields[sep + 1]
            super_opts = fields[sep + 3] if len(fields) > sep + 3 else ""
        except (ValueError, IndexError):
            raise StepError("parse mountinfo", None, f"malformed line {line!r}") from None
        mounts.append((root, mountpoint, fstype, super_opts))
    return mounts


def _under(path, top):
    return path == top or path.startswith(top.rstrip("/") + "/")


def _hierarchy(root, mountpoint, fstype, super_opts):
    if fstype == "cgroup2":
        return Hierarchy("cgroup2", mountpoint, root)
    controllers, name = [], None
    for opt in super_opts.split(","):
        if opt.startswith("name="):
            name = opt[len("name="):]
        elif opt and opt not in _V1_FLAGS and "=" not in opt:
            controllers.append(opt)
    return Hierarchy("cgroup", mountpoint, root, controllers, name)


def cgroup_hierarchies(mountinfo_text, root="/sys/fs/cgroup"):
    """The cgroup hierarchies visible under `root`, one per hierarchy, in mount order.

    Mounts elsewhere (e.g. the cgroup mounts inside containers' rootfs that show up in the host's
    mountinfo) are ignored, and a later mount hides whatever was mounted at or below its mountpoint.
    """
    root = os.path.normpath(root)
    visible = []
    for mroot, mountpoint, fstype, super_opts in parse_mountinfo(mountinfo_text):
        visible = [h for h in visible if not _under(h.mountpoint, mountpoint)]
        if fstype in ("cgroup", "cgroup2") and _under(mountpoint, root):
            visible.append(_hierarchy(mroot, mountpoint, fstype, super_opts))
    # The same hierarchy can be mounted twice (bind mounts); runc uses the first mountpoint.
    seen, result = set(), []
    for h in visible:
        ident = (h.fstype, frozenset(h.keys))
        if ident not in seen:
            seen.add(ident)
            result.append(h)
    return result


def detect_mode(hierarchies, root="/sys/fs/cgroup"):
    """"v1", "v2" or "hybrid" (v1 controllers plus a cgroup2 hierarchy, usually at <root>/unified)."""
    has_v1 = any(h.version == "v1" for h in hierarchies)
    has_v2 = any(h.version == "v2" for h in hierarchies)
    if has_v1:
        return "hybrid" if has_v2 else "v1"
    if has_v2:
        return "v2"
    raise StepError("detect cgroup mode", root, "no cgroup filesystem is mounted there")


def parse_self_cgroup(text):
    """/proc/<pid>/cgroup as {key: cgroup path}; v1 keys are controllers or "name=...", v2 is ""."""
    own = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        parts = line.split(":", 2)
        if len(parts) != 3:
            raise StepError("parse /proc/self/cgroup", None, f"malformed line {line!r}")
        _, controllers, path = parts
        for key in controllers.split(",") if controllers else [""]:
            own[key] = path
    return own


def own_cgroup_dir(hierarchy, own):
    """The directory of the caller's cgroup in `hierarchy`, given parse_self_cgroup() output."""
    path = next((own[k] for k in hierarchy.keys if k in own), None)
    if path is None:
        raise StepError("find own cgroup", hierarchy.mountpoint,
                        f"no entry for {','.join(hierarchy.keys) or 'cgroup2'} in /proc/self/cgroup")
    # Inside a container without a cgroup namespace the mount shows a sub-tree (mount root) while
    # /proc/self/cgroup shows the full path: only the part below the mount root is on disk.
    rel = os.path.relpath(path, hierarchy.root)
    if rel == ".." or rel.startswith("../"):
        raise StepError("find own cgroup", hierarchy.mountpoint,
                        f"own cgroup {path} is outside the mounted sub-tree {hierarchy.root}")
    return os.path.normpath(os.path.join(hierarchy.mountpoint, rel))


def read_mountinfo():
    with open("/proc/self/mountinfo") as f:
        return f.read()


def read_self_cgroup():
    with open("/proc/self/cgroup") as f:
        return f.read()
