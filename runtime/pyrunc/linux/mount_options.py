"""Pure translation of OCI mount options into mount(2) arguments. No side effects: unit-tested."""
from pyrunc.sys import consts as c

_MS_POSIXACL = 1 << 16

# option -> (clear?, flag). "clear" options remove a flag that an earlier option set.
_FLAGS = {
    "acl": (False, _MS_POSIXACL), "noacl": (True, _MS_POSIXACL), "symfollow": (True, c.MS_NOSYMFOLLOW),
    "async": (True, c.MS_SYNCHRONOUS), "atime": (True, c.MS_NOATIME), "bind": (False, c.MS_BIND),
    "defaults": (False, 0), "dev": (True, c.MS_NODEV), "diratime": (True, c.MS_NODIRATIME),
    "dirsync": (False, c.MS_DIRSYNC), "exec": (True, c.MS_NOEXEC), "iversion": (False, 1 << 23),
    "lazytime": (False, c.MS_LAZYTIME), "loud": (True, c.MS_SILENT), "mand": (False, c.MS_MANDLOCK),
    "noatime": (False, c.MS_NOATIME), "nodev": (False, c.MS_NODEV), "nodiratime": (False, c.MS_NODIRATIME),
    "noexec": (False, c.MS_NOEXEC), "noiversion": (True, 1 << 23), "nolazytime": (True, c.MS_LAZYTIME),
    "nomand": (True, c.MS_MANDLOCK), "norelatime": (True, c.MS_RELATIME),
    "nostrictatime": (True, c.MS_STRICTATIME), "nosuid": (False, c.MS_NOSUID),
    "nosymfollow": (False, c.MS_NOSYMFOLLOW), "rbind": (False, c.MS_BIND | c.MS_REC),
    "relatime": (False, c.MS_RELATIME), "remount": (False, c.MS_REMOUNT), "ro": (False, c.MS_RDONLY),
    "rw": (True, c.MS_RDONLY), "silent": (False, c.MS_SILENT), "strictatime": (False, c.MS_STRICTATIME),
    "suid": (True, c.MS_NOSUID), "sync": (False, c.MS_SYNCHRONOUS),
}

PROPAGATION = {
    "private": c.MS_PRIVATE, "rprivate": c.MS_PRIVATE | c.MS_REC,
    "shared": c.MS_SHARED, "rshared": c.MS_SHARED | c.MS_REC,
    "slave": c.MS_SLAVE, "rslave": c.MS_SLAVE | c.MS_REC,
    "unbindable": c.MS_UNBINDABLE, "runbindable": c.MS_UNBINDABLE | c.MS_REC,
}

# Recursive attributes (mount_setattr with AT_RECURSIVE): option -> (clear?, attr).
RECURSIVE_ATTRS = {
    "rro": (False, c.MOUNT_ATTR_RDONLY), "rrw": (True, c.MOUNT_ATTR_RDONLY),
    "rnosuid": (False, c.MOUNT_ATTR_NOSUID), "rsuid": (True, c.MOUNT_ATTR_NOSUID),
    "rnodev": (False, c.MOUNT_ATTR_NODEV), "rdev": (True, c.MOUNT_ATTR_NODEV),
    "rnoexec": (False, c.MOUNT_ATTR_NOEXEC), "rexec": (True, c.MOUNT_ATTR_NOEXEC),
    "rnodiratime": (False, c.MOUNT_ATTR_NODIRATIME), "rdiratime": (True, c.MOUNT_ATTR_NODIRATIME),
    "rnoatime": (False, c.MOUNT_ATTR_NOATIME), "rstrictatime": (False, c.MOUNT_ATTR_STRICTATIME),
    "rrelatime": (False, c.MOUNT_ATTR_RELATIME),
    "rnosymfollow": (False, c.MOUNT_ATTR_NOSYMFOLLOW), "rsymfollow": (True, c.MOUNT_ATTR_NOSYMFOLLOW),
}

# The atime setting is one enum field, not bits (MOUNT_ATTR_RELATIME is 0).
_ATIME_MODES = (c.MOUNT_ATTR_RELATIME, c.MOUNT_ATTR_NOATIME, c.MOUNT_ATTR_STRICTATIME)
_MOUNT_ATTR__ATIME = 0x70

# Options that are ours, not the kernel's: never passed in the data string.
EXTENSIONS = ("tmpcopyup", "idmap", "ridmap")

# Flags that a bind mount only honours on a remount (MS_BIND ignores them on the first call).
BIND_REMOUNT_FLAGS = (c.MS_RDONLY | c.MS_NOSUID | c.MS_NODEV | c.MS_NOEXEC | c.MS_NOATIME
                      | c.MS_NODIRATIME | c.MS_RELATIME | c.MS_STRICTATIME | c.MS_NOSYMFOLLOW)


class MountOptions:
    __slots__ = ("flags", "cleared", "propagation", "attr_set", "attr_clr", "data", "extensions")

    def __init__(self):
        self.flags = 0
        self.cleared = 0  # flags an option explicitly cleared ("rw", "suid", ...): the config wants them off
        self.propagation = []  # applied in order, after the mount itself
        self.attr_set = 0
        self.attr_clr = 0
        self.data = ""
        self.extensions = set()

    @property
    def is_bind(self):
        return bool(self.flags & c.MS_BIND)

    @property
    def recursive_bind(self):
        return self.is_bind and bool(self.flags & c.MS_REC)

    def __repr__(self):
        return (f"MountOptions(flags={self.flags:#x}, propagation={self.propagation}, attr_set={self.attr_set:#x}, "
                f"attr_clr={self.attr_clr:#x}, data={self.data!r}, extensions={sorted(self.extensions)})")


def parse(options, mount_type=None):
    """Translate a config mount's options (list of str) into MountOptions.

    A mount is a bind mount when its type is "bind" or its options hold bind/rbind (runtime-spec).
    Unknown options go to the data string, comma-joined, in order (runtime-spec: SHOULD).
    """
    result = MountOptions()
    data = []
    for option in options or ():
        if option in _FLAGS:
            clear, flag = _FLAGS[option]
            if clear:
                result.flags &= ~flag
                result.cleared |= flag
            else:
                result.flags |= flag
                result.cleared &= ~flag
        elif option in PROPAGATION:
            result.propagation.append(PROPAGATION[option])
        elif option in RECURSIVE_ATTRS:
            clear, attr = RECURSIVE_ATTRS[option]
            if not clear and attr in _ATIME_MODES:
                # mount_setattr(2): a new atime mode replaces the old one (last wins) and needs all
                # of MOUNT_ATTR__ATIME in attr_clr; two modes in attr_set are EINVAL.
                result.attr_set = (result.attr_set & ~_MOUNT_ATTR__ATIME) | attr
                result.attr_clr |= _MOUNT_ATTR__ATIME
            elif clear:
                result.attr_clr |= attr
                result.attr_set &= ~attr
            else:
                result.attr_set |= attr
                result.attr_clr &= ~attr
        elif option in EXTENSIONS:
            result.extensions.add(option)
        else:
            data.append(option)
    if mount_type == "bind":
        result.flags |= c.MS_BIND
    result.data = ",".join(data)
    return result
