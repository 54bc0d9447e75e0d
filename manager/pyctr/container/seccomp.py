"""Seccomp for containers: a default profile in the spirit of Docker's (which allow-lists ~350
syscalls): here the syscalls Docker's profile refuses to a container without extra capabilities are
refused with EPERM, everything else allowed; and Docker-format profile files (--security-opt
seccomp=FILE) turned into the OCI form."""
import json

from pyctr.container.errors import ContainerError

# refused by Docker's default profile unless a capability (SYS_ADMIN, SYS_MODULE, SYS_TIME, ...)
# is granted; the cap that brings each back is beside it
_DENIED = {
    "CAP_SYS_ADMIN": ["bpf", "clone3", "fanotify_init", "fsconfig", "fsmount", "fsopen", "fspick", "lookup_dcookie",
                      "mount", "mount_setattr", "move_mount", "name_to_handle_at", "open_tree",
                      "perf_event_open", "quotactl", "quotactl_fd", "setdomainname", "sethostname", "setns",
                      "syslog", "umount", "umount2", "unshare", "pivot_root", "userfaultfd"],
    "CAP_SYS_BOOT": ["reboot"],
    "CAP_SYS_MODULE": ["delete_module", "init_module", "finit_module", "create_module", "query_module",
                       "get_kernel_syms"],
    "CAP_SYS_PACCT": ["acct"],
    "CAP_SYS_RAWIO": ["iopl", "ioperm"],
    "CAP_SYS_TIME": ["settimeofday", "stime", "clock_settime", "clock_adjtime", "adjtimex"],
    "CAP_SYS_TTY_CONFIG": ["vhangup"],
    "CAP_DAC_READ_SEARCH": ["open_by_handle_at"],
    "": ["kexec_load", "kexec_file_load", "keyctl", "add_key", "request_key", "nfsservctl", "uselib",
         "vm86", "vm86old", "swapon", "swapoff", "_sysctl", "ustat", "sysfs"],
}


def default_profile(caps):
    denied = sorted({s for cap, calls in _DENIED.items() if not cap or cap not in caps for s in calls})
    return {"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": denied, "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}


def from_file(path, caps):
    """A Docker seccomp profile file -> linux.seccomp; entries whose includes/excludes caps do not
    match the container's are dropped, as Docker does."""
    try:
        with open(path, "rb") as f:
            prof = json.loads(f.read(4 << 20))
    except OSError as e:
        raise ContainerError(f"opening seccomp profile ({path}) failed: {e.strerror.lower()}") from None
    except ValueError as e:
        raise ContainerError(f"decoding seccomp profile ({path}) failed: {e}") from None
    if not isinstance(prof, dict) or not isinstance(prof.get("defaultAction"), str):
        raise ContainerError(f"seccomp profile {path}: no defaultAction")
    out = {"defaultAction": prof["defaultAction"]}
    if "defaultErrnoRet" in prof:
        out["defaultErrnoRet"] = prof["defaultErrnoRet"]
    arches = list(prof.get("architectures") or [])
    for m in prof.get("archMap") or []:
        if isinstance(m, dict) and m.get("architecture"):
            arches += [m["architecture"]] + list(m.get("subArchitectures") or [])
    if arches:
        out["architectures"] = arches
    rules = []
    for s in prof.get("syscalls") or []:
        if not isinstance(s, dict):
            raise ContainerError(f"seccomp profile {path}: a syscalls entry is not an object")
        inc = (s.get("includes") or {}).get("caps") or []
        exc = (s.get("excludes") or {}).get("caps") or []
        if any(c not in caps for c in inc) or any(c in caps for c in exc):
            continue
        rule = {k: s[k] for k in ("action", "errnoRet", "args") if s.get(k) is not None}
        rule["names"] = list(s.get("names") or ([s["name"]] if s.get("name") else []))
        if rule["names"]:
            rules.append(rule)
    out["syscalls"] = rules
    return out
