"""The config.json that `pyrunc spec` writes: runc 1.1's default template, exactly (its ociVersion
and hostname included), so a bundle made by either runtime is the same bundle.

Pure data, so test helpers and the manager can build bundles from it without running a command.
"""
# The spec version runc 1.1 writes; pyrunc reads every version up to pyrunc.OCI_VERSION.
RUNC_SPEC_VERSION = "1.0.2-dev"

_DEFAULT_CAPS = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]


def default_config(args=("sh",), terminal=True):
    caps = list(_DEFAULT_CAPS)
    return {
        "ociVersion": RUNC_SPEC_VERSION,
        "process": {
            "terminal": terminal,
            "user": {"uid": 0, "gid": 0},
            "args": list(args),
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {"bounding": caps, "effective": list(caps), "permitted": list(caps),
                             "ambient": list(caps)},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": True},
        "hostname": "runc",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
        ],
        "linux": {
            "resources": {"devices": [{"allow": False, "access": "rwm"}]},
            "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")],
            "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                            "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                            "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
        },
    }


def rootless(config):
    """Turn a default config into runc's rootless variant: a user namespace mapping the caller."""
    import os
    linux = config["linux"]
    linux.pop("resources", None)
    namespaces = [ns for ns in linux.pop("namespaces") if ns["type"] != "network"] + [{"type": "user"}]
    # Keys in the order of runc's struct, so the bytes match runc's.
    config["linux"] = {"uidMappings": [{"containerID": 0, "hostID": os.geteuid(), "size": 1}],
                       "gidMappings": [{"containerID": 0, "hostID": os.getegid(), "size": 1}],
                       "namespaces": namespaces, **linux}
    for mount in config["mounts"]:
        if mount["destination"] == "/sys":
            # sysfs cannot be mounted without owning the network namespace: the host's, read-only.
            mount.update(type="none", source="/sys", options=["rbind", "nosuid", "noexec", "nodev", "ro"])
        elif mount.get("options"):
            # Only the caller is mapped: no other uid or gid may own a mount's root (runc does the same).
            mount["options"] = [o for o in mount["options"] if not o.startswith(("uid=", "gid="))]
    return config
