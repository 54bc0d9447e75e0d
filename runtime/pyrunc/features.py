"""The runtime-spec features document: what this build of pyrunc can do (runtime-spec features.md)."""
import os

from pyrunc import OCI_VERSION, __version__


def features():
    from pyrunc.linux.capabilities import NAMES
    from pyrunc.linux.mount_options import _FLAGS, PROPAGATION, RECURSIVE_ATTRS
    from pyrunc.linux.namespaces import FLAGS as NAMESPACES
    from pyrunc.linux import lsm
    cgroup_v2 = os.path.exists("/sys/fs/cgroup/cgroup.controllers") or os.path.exists(
        "/sys/fs/cgroup/unified/cgroup.controllers")
    return {
        "ociVersionMin": "1.0.0",
        "ociVersionMax": OCI_VERSION,
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": sorted(set(_FLAGS) | set(PROPAGATION) | set(RECURSIVE_ATTRS) | {"idmap", "ridmap"}),
        "linux": {
            "namespaces": sorted(ns for ns in NAMESPACES if ns != "time"),
            "capabilities": list(NAMES),
            "cgroup": {"v1": True, "v2": cgroup_v2, "systemd": True, "systemdUser": False, "rdma": True},
            "seccomp": _seccomp(),
            "apparmor": {"enabled": lsm.apparmor_enabled()},
            "selinux": {"enabled": lsm.selinux_enabled()},
            "intelRdt": {"enabled": False},
            "mountExtensions": {"idmap": {"enabled": _idmap_supported()}},
        },
        "annotations": {
            "org.opencontainers.runtime-spec.version": OCI_VERSION,
            "io.github.pyrunc.version": __version__,
        },
    }


def _seccomp():
    """What this host's libseccomp can do; disabled (not an error) when it cannot be loaded."""
    from pyrunc.linux.seccomp.compile import ACTIONS, FLAGS, OPERATORS
    from pyrunc.sys import libseccomp
    try:
        version = libseccomp.version()
    except OSError:
        return {"enabled": False}
    flags = [f for f in FLAGS if f != "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV" or version >= (2, 6, 0)]
    return {
        "enabled": True,
        "actions": sorted(ACTIONS),
        "operators": sorted(OPERATORS),
        "archs": sorted("SCMP_ARCH_" + a for a in ("X86", "X86_64", "X32", "ARM", "AARCH64", "MIPS", "MIPS64",
                        "MIPS64N32", "MIPSEL", "MIPSEL64", "MIPSEL64N32", "PPC", "PPC64", "PPC64LE", "S390",
                        "S390X", "RISCV64")),
        "knownFlags": sorted(FLAGS),
        "supportedFlags": sorted(flags),
    }


def _idmap_supported():
    """mount_setattr exists (Linux 5.12+): an fd -1 gets EBADF, a kernel without it ENOSYS."""
    from pyrunc.sys import consts as c
    from pyrunc.sys.calls import mount_setattr
    try:
        mount_setattr(-1, "", c.AT_EMPTY_PATH, c.MOUNT_ATTR_IDMAP, 0, 0, 0)
    except OSError as e:
        return e.errno != 38  # ENOSYS
    return True
