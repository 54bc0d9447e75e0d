"""process.capabilities: bounding set via prctl, then effective/permitted/inheritable via capset,
then ambient. Bounding is dropped while still privileged; the rest after the user switch."""
from pyrunc.errors import StepError

NAMES = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT",
    "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
    "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN",
    "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
)
NUMBERS = {name: number for number, name in enumerate(NAMES)}


def last_cap():
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return int(f.read())
    except OSError:
        return len(NAMES) - 1


def mask(names, field):
    value = 0
    for name in names or ():
        if name not in NUMBERS:
            raise StepError(f"process.capabilities.{field}", None, f"unknown capability {name!r}")
        value |= 1 << NUMBERS[name]
    return value


class CapabilitySets:
    """Masks computed (and names checked) once, before any privilege is given up."""

    def __init__(self, caps):
        self.bounding = mask(caps.get("bounding"), "bounding")
        self.effective = mask(caps.get("effective"), "effective")
        self.permitted = mask(caps.get("permitted"), "permitted")
        self.inheritable = mask(caps.get("inheritable"), "inheritable")
        self.ambient = mask(caps.get("ambient"), "ambient")
        self.last = last_cap()

    def drop_bounding(self):
        from pyrunc.sys import consts as c
        from pyrunc.sys.calls import prctl
        for cap in range(self.last + 1):
            if not self.bounding & (1 << cap):
                try:
                    prctl(c.PR_CAPBSET_DROP, cap)
                except OSError as e:
                    raise StepError("drop bounding capability", NAMES[cap], e) from None

    def apply(self):
        from pyrunc.sys import consts as c
        from pyrunc.sys.calls import capset, prctl
        available = (1 << (self.last + 1)) - 1
        try:
            capset(self.effective & available, self.permitted & available, self.inheritable & available)
        except OSError as e:
            raise StepError("capset", None, e) from None
        for cap in range(self.last + 1):
            if self.ambient & (1 << cap):
                try:
                    prctl(c.PR_CAP_AMBIENT, c.PR_CAP_AMBIENT_RAISE, cap)
                except OSError:
                    # Ambient needs the cap in permitted and inheritable: runc skips it likewise.
                    pass
