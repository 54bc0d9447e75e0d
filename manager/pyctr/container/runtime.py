"""The OCI runtime (pyrunc by default, any runc-compatible binary with --runtime), called with its
state under pyctr's runroot (a tmpfs: gone after a reboot, as the containers are)."""
import json
import os
import shutil
import subprocess
import sys

from pyctr.container.errors import ContainerError


def sibling(name):
    """A program installed beside pyctr (the venv's bin), else on PATH."""
    here = os.path.dirname(os.path.abspath(sys.argv[0] or ""))
    path = os.path.join(here, name)
    if os.access(path, os.X_OK):
        return path
    found = shutil.which(name)
    if not found:
        raise ContainerError(f"{name} not found (beside pyctr or on PATH)")
    return found


def resolve(name):
    if not name or name == "pyrunc":
        return sibling("pyrunc")
    if os.path.isabs(name):
        if not os.access(name, os.X_OK):
            raise ContainerError(f"runtime {name}: not an executable file")
        return name
    found = shutil.which(name)
    if not found:
        raise ContainerError(f"unknown or invalid runtime name: {name}")
    return found


class Runtime:
    def __init__(self, binary, root):
        self.binary, self.root = binary, root

    def argv(self, *args):
        return [self.binary, "--root", self.root, *args]

    def run(self, *args, timeout=60):
        try:
            return subprocess.run(self.argv(*args), stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                  timeout=timeout)
        except subprocess.TimeoutExpired:
            raise ContainerError(f"{os.path.basename(self.binary)} {args[0]}: timed out after {timeout}s") from None
        except OSError as e:
            raise ContainerError(f"cannot run {self.binary}: {e.strerror}") from None

    def state(self, cid):
        cp = self.run("state", cid)
        if cp.returncode != 0:
            return None
        try:
            return json.loads(cp.stdout)
        except ValueError:
            return None

    def check(self, *args):
        cp = self.run(*args)
        if cp.returncode != 0:
            lines = [ln for ln in cp.stderr.splitlines() if ln.strip()]
            raise ContainerError(f"{os.path.basename(self.binary)} {args[0]}: "
                                 f"{lines[-1] if lines else f'exit status {cp.returncode}'}")
        return cp

    def kill(self, cid, sig, all_=False):
        return self.run("kill", *(["--all"] if all_ else []), cid, str(sig))

    def delete(self, cid):
        """Forced delete; an unknown container is fine (already gone)."""
        return self.run("delete", "--force", cid)
