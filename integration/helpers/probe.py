"""Build the static probe (probe.c) once per session and install copies into bundle rootfs dirs."""
import os
import shutil
import subprocess

_SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "probe.c")


def build(directory):
    """Compile probe.c statically; fails loudly when gcc or static libc is missing (install gcc)."""
    out = os.path.join(directory, "probe")
    cp = subprocess.run(["gcc", "-static", "-O1", "-o", out, _SOURCE], capture_output=True, text=True)
    assert cp.returncode == 0, f"cannot build the probe helper (gcc -static): {cp.stderr}"
    return out


def install(probe, rootfs, name="probe", mode=0o755, uid=0, gid=0):
    """A real copy (never a hard link: setuid bits and owners must not reach the template)."""
    target = os.path.join(rootfs, "bin", name)
    shutil.copyfile(probe, target)
    os.chown(target, uid, gid)
    os.chmod(target, mode)
    return "/bin/" + name
