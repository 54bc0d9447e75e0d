"""What every container command needs: the stores and where pyctr, the runtime and the monitor
keep their state (--root on disk; --runroot on a tmpfs, gone after a reboot)."""
import hashlib
import os
import sys


class Context:
    def __init__(self, root, runroot=None, allow_devices=False):
        from pyctr.container.store import ContainerStore
        self.root = os.path.abspath(root)
        # one runroot per store: two stores (tests) never share runtime state or sockets
        self.runroot = os.path.abspath(runroot or os.path.join(
            "/run/pyctr", hashlib.sha256(self.root.encode()).hexdigest()[:12]))
        self.runtime_root = os.path.join(self.runroot, "runtime")
        self.socket_dir = os.path.join(self.runroot, "s")
        self.allow_devices = allow_devices
        self.containers = ContainerStore(self.root)
        self._images = None

    @property
    def images(self):
        if self._images is None:
            from pyctr.image.store import Store
            self._images = Store(self.root, allow_devices=self.allow_devices)
        return self._images

    def global_args(self):
        return ["--root", self.root, "--runroot", self.runroot] + \
               (["--allow-device-nodes"] if self.allow_devices else [])

    @property
    def pyctr_binary(self):
        argv0 = os.path.abspath(sys.argv[0] or "")
        if os.path.basename(argv0) == "pyctr" and os.access(argv0, os.X_OK):
            return argv0
        return self.sibling("pyctr")

    def sibling(self, name):
        from pyctr.container.runtime import sibling
        return sibling(name)

    def runtime(self, rec, for_removal=False):
        """The container's runtime; for_removal: pyrunc if that one is gone (rm must still work)."""
        from pyctr.container.errors import ContainerError
        from pyctr.container.runtime import Runtime, resolve
        try:
            return Runtime(resolve(rec["HostConfig"].get("Runtime")), self.runtime_root)
        except ContainerError:
            if not for_removal:
                raise
            return Runtime(resolve("pyrunc"), self.runtime_root)
