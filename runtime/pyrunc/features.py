"""The runtime-spec features document: what this build of pyrunc can do (runtime-spec features.md)."""
import os

from pyrunc import OCI_VERSION, __version__


def features():
    from pyrunc.linux.capabilities import NAMES
    from pyrunc.linux.mount_options import _FLAGS, PROPAGATION, RECURSIVE_ATTRS
    from pyrunc.linux.namespaces import FLAGS as NAMESPACES
    cgroup_v2 = os.path.exists("/sys/fs/cgroup/cgroup.controllers") or os.path.exists(
        "/sys/fs/cgroup/unified/cgroup.controllers")
    return {
        "ociVersionMin": "1.0.0",
        "ociVersionMax": OCI_VERSION,
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": sorted(set(_FLAGS) | set(PROPAGATION) | set(RECURSIVE_ATTRS)),
        "linux": {
            "namespaces": sorted(ns for ns in NAMESPACES if ns not in ("user", "time")),
            "capabilities": list(NAMES),
            "cgroup": {"v1": True, "v2": cgroup_v2, "systemd": False, "systemdUser": False, "rdma": False},
            "seccomp": {"enabled": False},
            "apparmor": {"enabled": False},
            "selinux": {"enabled": False},
            "intelRdt": {"enabled": False},
            "mountExtensions": {"idmap": {"enabled": False}},
        },
        "annotations": {
            "org.opencontainers.runtime-spec.version": OCI_VERSION,
            "io.github.pyrunc.version": __version__,
        },
    }
