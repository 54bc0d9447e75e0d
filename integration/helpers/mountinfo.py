"""Parse /proc/<pid>/mountinfo text (the host's, or one printed from inside a container)."""
import re
from dataclasses import dataclass, field


def _unescape(s):
    # mountinfo escapes space, tab, newline and backslash as \ooo
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), s)


@dataclass
class Mount:
    mount_id: int
    parent_id: int
    dev: str
    root: str
    mount_point: str
    options: list            # per-mount options: rw/ro, nosuid, nodev, noexec, relatime...
    optional: list           # shared:N, master:N, propagate_from:N, unbindable
    fstype: str
    source: str
    super_options: list      # per-superblock options: size=, mode=, ptmxmode=...
    raw: str = field(repr=False, default="")

    @property
    def readonly(self):
        return "ro" in self.options

    def tag(self, name):
        """The value of an optional field such as 'shared' or 'master', or None."""
        for o in self.optional:
            if o == name:
                return ""
            if o.startswith(name + ":"):
                return o.split(":", 1)[1]
        return None


def parse(text):
    mounts = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        a = left.split()
        b = right.split()
        if len(a) < 6 or len(b) < 2:
            continue
        mounts.append(Mount(
            mount_id=int(a[0]), parent_id=int(a[1]), dev=a[2], root=_unescape(a[3]),
            mount_point=_unescape(a[4]), options=a[5].split(","), optional=a[6:],
            fstype=b[0], source=_unescape(b[1]),
            super_options=b[2].split(",") if len(b) > 2 else [], raw=line))
    return mounts


def read(pid="self"):
    with open(f"/proc/{pid}/mountinfo") as f:
        return parse(f.read())


def at(mounts, mount_point):
    """The top-most mount at mount_point (the last one listed), or None."""
    found = None
    for m in mounts:
        if m.mount_point == mount_point:
            found = m
    return found


_NOT_CONTROLLERS = {"rw", "ro", "clone_children", "xattr", "noprefix", "cpuset_v2_mode", "nsdelegate",
                    "memory_recursiveprot", "memory_localevents", "favordynmods", "memory_hugetlb_accounting"}


def cgroup_hierarchies():
    """The host's cgroup hierarchies: [(mount_point, fstype, key)], one per hierarchy (v1 and v2).

    key is the comma-joined controllers (or name=...) of a v1 hierarchy, "" for cgroup2.
    """
    found = {}
    for m in read():
        if m.fstype not in ("cgroup", "cgroup2") or m.root != "/":
            continue
        if m.fstype == "cgroup2":
            key = ""
        else:
            key = ",".join(o for o in m.super_options
                           if o not in _NOT_CONTROLLERS and ("=" not in o or o.startswith("name=")))
        prev = found.get((m.fstype, key))
        if prev is None or (m.mount_point.startswith("/sys/fs/cgroup") and not prev.startswith("/sys/fs/cgroup")):
            found[(m.fstype, key)] = m.mount_point
    return [(mp, fstype, key) for (fstype, key), mp in sorted(found.items(), key=lambda kv: kv[1])]
