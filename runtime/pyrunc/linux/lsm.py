"""process.apparmorProfile, process.selinuxLabel, linux.mountLabel.

Checked by the runtime before anything is built: a config asking for an LSM the host does not run
fails with a clear error, instead of running the container unconfined. Applied by init as the
exec-time label (takes effect at execve), as runc does.
"""
import os

from pyrunc.errors import StepError


def apparmor_enabled():
    try:
        with open("/sys/module/apparmor/parameters/enabled") as f:
            return f.read().strip().startswith("Y")
    except OSError:
        return False


def selinux_enabled():
    return os.path.exists("/sys/fs/selinux/enforce")


def check(config):
    process = config.get("process") or {}
    linux = config.get("linux") or {}
    if process.get("apparmorProfile") and not apparmor_enabled():
        raise StepError("process.apparmorProfile", repr(process["apparmorProfile"]),
                        "AppArmor is not enabled on this host")
    if process.get("selinuxLabel") and not selinux_enabled():
        raise StepError("process.selinuxLabel", repr(process["selinuxLabel"]), "SELinux is not enabled on this host")
    if linux.get("mountLabel") and not selinux_enabled():
        raise StepError("linux.mountLabel", repr(linux["mountLabel"]), "SELinux is not enabled on this host")


def _write_attr(paths, value, what):
    last = None
    for path in paths:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        except FileNotFoundError as e:
            last = e
            continue
        except OSError as e:
            raise StepError(what, path, e) from None
        try:
            os.write(fd, value.encode())
            return
        except OSError as e:
            raise StepError(what, value, e) from None
        finally:
            os.close(fd)
    raise StepError(what, value, last)


def apply_exec_labels(process):
    """In init after pivot_root (the container's own /proc), just before execve."""
    if process.get("apparmorProfile"):
        _write_attr(("/proc/self/attr/apparmor/exec", "/proc/self/attr/exec"),
                    "exec " + process["apparmorProfile"], "set AppArmor profile")
    if process.get("selinuxLabel"):
        _write_attr(("/proc/self/attr/exec",), process["selinuxLabel"], "set SELinux exec label")


# Filesystems labelled through the mount's data (context=); proc, sysfs and cgroup keep their own
# labels and mqueue gets the label on its root inode instead (runc's choices).
_NO_CONTEXT = ("proc", "sysfs", "cgroup", "cgroup2", "mqueue")


def mount_data_with_label(mount_type, data, mount_label):
    """linux.mountLabel as SELinux's context= mount option, for the mounts that take it."""
    if not mount_label or mount_type in _NO_CONTEXT:
        return data
    option = f'context="{mount_label}"'
    return f"{data},{option}" if data else option


def label_mqueue(path, mount_label):
    """mqueue has no context= option: label its root (runc: label.SetFileLabel)."""
    if mount_label:
        try:
            os.setxattr(path, "security.selinux", mount_label.encode())
        except OSError as e:
            raise StepError("label mqueue mount", path, e) from None
