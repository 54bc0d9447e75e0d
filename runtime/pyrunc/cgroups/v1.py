"""cgroup v1 and hybrid hosts: one directory per hierarchy, cpuset preparation, freezer choice.

On a hybrid host the unified (cgroup2) hierarchy is joined as well, under the key "", because
systemd and cgroup.kill use it. Its controllers are left alone: the host chose to keep them on v1,
and enabling one there (as runc does not) changes the host for every other runtime (crun then
refuses the host).
"""
import os

from ..errors import StepError
from . import freezer as fz
from . import fs
from .manager import CgroupManager


class V1Manager(CgroupManager):
    def __init__(self, paths, hierarchies, created=(), version="v1"):
        super().__init__(paths, hierarchies, created)
        self.version = version

    def _create_in(self, hierarchy, cgdir):
        levels = self._mkdir_p(hierarchy.mountpoint, cgdir)
        if hierarchy.version == "v1" and "cpuset" in hierarchy.controllers:
            copy_cpuset_down(levels)

    def _freezer(self):
        # The v1 freezer when mounted (what runc uses on hybrid too); else the unified one.
        if "freezer" in self.paths:
            return (fz.v1_state, fz.v1_freeze, fz.v1_thaw, self.paths["freezer"])
        if "" in self.paths:
            return (fz.v2_state, fz.v2_freeze, fz.v2_thaw, self.paths[""])
        return None

    def _pids_dir(self):
        for key in ("pids", "freezer"):
            if key in self.paths:
                return self.paths[key]
        return self.paths[self.hierarchies[0].keys[0]]


def copy_cpuset_down(levels):
    """Fill empty cpuset.cpus/cpuset.mems from the parent, top-down from the hierarchy root.

    A new v1 cpuset cgroup starts with no CPUs and no memory nodes (unless the parent has
    cgroup.clone_children), and the kernel refuses to put a process there (ENOSPC).
    """
    # A cpuset hierarchy mounted with "noprefix" names the files "cpus" and "mems".
    prefix = "cpuset." if os.path.exists(os.path.join(levels[0], "cpuset.cpus")) else ""
    for parent, child in zip(levels, levels[1:]):
        for name in (prefix + "cpus", prefix + "mems"):
            path = os.path.join(child, name)
            try:
                if fs.read(path).strip():
                    continue
                value = fs.read(os.path.join(parent, name)).strip()
                if value:  # levels are filled top-down, so only an empty root leaves this empty
                    fs.write(path, value)
            except OSError as exc:
                raise StepError("create cgroup", path, exc) from exc
