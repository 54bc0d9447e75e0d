"""linux.namespaces: which to create (unshare flags) and which to join (setns by path)."""
import os

from pyrunc.errors import StepError
from pyrunc.sys import consts as c

FLAGS = {
    "pid": c.CLONE_NEWPID, "network": c.CLONE_NEWNET, "mount": c.CLONE_NEWNS, "ipc": c.CLONE_NEWIPC,
    "uts": c.CLONE_NEWUTS, "user": c.CLONE_NEWUSER, "cgroup": c.CLONE_NEWCGROUP, "time": c.CLONE_NEWTIME,
}
# Join order: user first (it decides what the others allow), mount late (it changes the root).
_JOIN_ORDER = ("user", "ipc", "uts", "network", "pid", "cgroup", "time", "mount")


def has_mount_namespace(config):
    """Whether the container has a mount namespace of its own (new or joined): without one its
    mounts are made in the runtime's, as runc makes them."""
    return any(ns.get("type") == "mount" for ns in (config.get("linux") or {}).get("namespaces") or ())


class NamespacePlan:
    def __init__(self, namespaces):
        self.join = {}  # type -> path
        self.new = set()
        for ns in namespaces or ():
            if ns.get("path"):
                self.join[ns["type"]] = ns["path"]
            else:
                self.new.add(ns["type"])

    def private(self, kind):
        return kind in self.new or kind in self.join

    @property
    def unshare_flags(self):
        flags = 0
        for kind in self.new:
            flags |= FLAGS[kind]
        return flags

    def bring_up_loopback(self):
        """In init: a network namespace it created has only `lo`, and down. runc (its "loopback"
        network) and crun bring it up; one joined by path is left as it is."""
        if "network" not in self.new:
            return
        from pyrunc.sys.calls import link_up
        try:
            link_up("lo")
        except OSError as e:
            raise StepError("bring up the loopback interface", "lo", e) from None

    def open_joined(self):
        """Open every namespace to join before joining any: paths resolve in the caller's view."""
        fds = []
        for kind in _JOIN_ORDER:
            path = self.join.get(kind)
            if path:
                try:
                    fds.append((kind, path, os.open(path, os.O_RDONLY | os.O_CLOEXEC)))
                except OSError as e:
                    for _, _, fd in fds:
                        os.close(fd)
                    raise StepError(f"open {kind} namespace", path, e) from None
        return fds

    def enter(self, on_new_user=None):
        """Join, then create. A new user namespace is made first and alone, and on_new_user() runs
        before the others: they must be owned by it, and need its mappings in place."""
        from pyrunc.sys.calls import setns, unshare
        for kind, path, fd in self.open_joined():
            try:
                setns(fd, FLAGS[kind], path)
            except OSError as e:
                raise StepError(f"join {kind} namespace", path, e) from None
            finally:
                os.close(fd)
        rest = self.new
        if "user" in self.new:
            try:
                unshare(c.CLONE_NEWUSER)
            except OSError as e:
                raise StepError("unshare user namespace", None, e) from None
            if on_new_user is not None:
                on_new_user()
            rest = self.new - {"user"}
        if rest:
            flags = 0
            for kind in rest:
                flags |= FLAGS[kind]
            try:
                unshare(flags)
            except OSError as e:
                raise StepError("unshare namespaces " + ",".join(sorted(rest)), None, e) from None
