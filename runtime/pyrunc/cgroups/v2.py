"""cgroup v2 (unified hierarchy): creating the cgroup and choosing its freezer.

Also used for the unified hierarchy of a hybrid host (v1.py), where it usually has no controllers.
"""
import os

from . import freezer as fz
from . import fs
from .manager import CgroupManager


class V2Manager(CgroupManager):
    version = "v2"

    def _create_in(self, hierarchy, cgdir):
        levels = self._mkdir_p(hierarchy.mountpoint, cgdir)
        enable_controllers(levels[:-1])

    def _freezer(self):
        return (fz.v2_state, fz.v2_freeze, fz.v2_thaw, self.paths[""])

    def _pids_dir(self):
        return self.paths[""]


def enable_controllers(levels):
    """Delegate every available controller down each level, so the leaf can get resource limits.

    Best effort, like runc: a level that holds processes (no internal processes rule) or is not
    ours to change refuses some controllers, and the resource that needs one reports it later.
    """
    for level in levels:
        try:
            available = fs.read(os.path.join(level, "cgroup.controllers")).split()
            enabled = set(fs.read(os.path.join(level, "cgroup.subtree_control")).split())
        except OSError:
            continue
        missing = [c for c in available if c not in enabled]
        if not missing:
            continue
        control = os.path.join(level, "cgroup.subtree_control")
        try:
            fs.write(control, " ".join("+" + c for c in missing))
        except OSError:
            # The write is all-or-nothing: retry one by one to get every controller that can be had.
            for c in missing:
                try:
                    fs.write(control, "+" + c)
                except OSError:
                    pass
