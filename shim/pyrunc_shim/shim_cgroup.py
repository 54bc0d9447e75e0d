"""The options' ShimCgroup: the shim's server joins that cgroup, as containerd-shim-runc-v2 does at
`start` (cgroup v1: every hierarchy where the cgroup exists; v2: the unified one; none: an error)."""
import os

from pyrunc_shim import errors


def _hierarchies(mountinfo="/proc/self/mountinfo"):
    with open(mountinfo) as f:
        for line in f:
            fields = line.split()
            sep = fields.index("-")
            if fields[sep + 1] in ("cgroup", "cgroup2"):
                yield fields[4].replace("\\040", " ")


def join(pid, cgroup):
    """Move pid into the cgroup named by its path from each hierarchy's root."""
    rel = os.path.normpath("/" + cgroup).lstrip("/")  # never above the root: ".." stops there
    if not cgroup.startswith("/") or not rel:
        raise errors.invalid(f"shim cgroup {cgroup!r}: must be an absolute path below a hierarchy's root")
    joined = []
    for mountpoint in _hierarchies():
        procs = os.path.join(mountpoint, rel, "cgroup.procs")
        if not os.path.exists(procs):
            continue
        try:
            with open(procs, "w") as f:
                f.write(str(pid))
        except OSError as e:
            raise errors.invalid(f"join shim cgroup {procs}: {e.strerror}") from None
        joined.append(mountpoint)
    if not joined:
        raise errors.not_found(f"shim cgroup {cgroup!r} (in no mounted cgroup hierarchy)")
    return joined
