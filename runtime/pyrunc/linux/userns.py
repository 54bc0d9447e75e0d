"""User namespaces: the parent writes uid_map/gid_map of a child that has unshared CLONE_NEWUSER.

The child cannot map arbitrary ids itself (only its own, once, without setgroups); the runtime in
the parent namespace holds CAP_SETUID/CAP_SETGID there, so it writes the whole config's mappings
while the child waits. When the runtime itself is unprivileged, setgroups must be denied first or
the kernel refuses the gid_map.
"""
import os

from pyrunc.errors import StepError


def format_mappings(mappings):
    return "".join(f"{m['containerID']} {m['hostID']} {m['size']}\n" for m in mappings)


def write_mappings(pid, linux):
    base = f"/proc/{pid}"
    if os.geteuid() != 0:
        write_map(f"{base}/setgroups", "deny")
    write_map(f"{base}/uid_map", format_mappings(linux.get("uidMappings") or ()))
    write_map(f"{base}/gid_map", format_mappings(linux.get("gidMappings") or ()))


def write_map(path, text):
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, text.encode())
        finally:
            os.close(fd)
    except OSError as e:
        raise StepError("write user namespace mapping", path, e) from None


def become_root():
    """After the mappings exist: take container uid/gid 0 if mapped (our ids were the overflow ids)."""
    try:
        with open("/proc/self/uid_map") as f:
            uid_zero = any(int(line.split()[0]) == 0 for line in f if line.strip())
        with open("/proc/self/gid_map") as f:
            gid_zero = any(int(line.split()[0]) == 0 for line in f if line.strip())
        if gid_zero:
            os.setresgid(0, 0, 0)
        if uid_zero:
            os.setresuid(0, 0, 0)
    except OSError as e:
        raise StepError("become root in the user namespace", None, e) from None


def setgroups_allowed():
    try:
        with open("/proc/self/setgroups") as f:
            return f.read().strip() == "allow"
    except OSError:
        return True
