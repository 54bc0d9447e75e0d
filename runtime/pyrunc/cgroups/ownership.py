"""Which cgroups are the container's to kill in and remove, and which cgroupsPath values are refused.

runtime-spec (runtime.md, delete): "Deleting a container MUST delete the resources that were created
during the create step. Note that resources associated with the container, but not created by this
container, MUST NOT be deleted." config-linux.md: "Runtimes MAY consider certain cgroupsPath values
to be invalid, and MUST generate an error if this is the case."

So a cgroup dir is the container's own only when its create made it. A cgroup that existed before
(shared with other processes, or made by someone else) is never removed, never sent cgroup.kill and
never frozen; only the container's processes in it are signalled (lifecycle/container.py chooses
them). A path that resolves to a hierarchy's root, or to the caller's own cgroup or one above it,
is refused outright: everything the caller runs (the caller itself, or the whole host) sits there.
"""
import os

from ..errors import InvalidSpec, StepError


def check_cgroups_path(cgroups_path, paths, hierarchies, own):
    """Refuse a resolved cgroup dir that is a hierarchy root or the caller's cgroup or above it.

    paths: resolve_paths() output; own: parse_self_cgroup() output of the caller, or None when it
    was not read (then only the root rule applies). A caller's cgroup that this mount does not
    show (a container without a cgroup namespace) cannot be reached from any dir here.
    """
    from .mountinfo import own_cgroup_dir

    shown = cgroups_path if cgroups_path else "(empty: the container id)"
    for h in hierarchies:
        cgdir = paths[h.keys[0]]
        if cgdir == h.mountpoint:
            raise InvalidSpec("linux.cgroupsPath", f"{shown!r} resolves to the root of the cgroup "
                              f"hierarchy at {h.mountpoint}, which holds every process of the host; "
                              "name a cgroup below it")
        if own is None:
            continue
        try:
            mine = own_cgroup_dir(h, own)
        except StepError:  # no entry, or outside this mount: nothing here can hold the caller
            continue
        if mine == cgdir or mine.startswith(cgdir + "/"):
            which = "the runtime's own cgroup" if mine == cgdir else "a cgroup above the runtime's own"
            raise InvalidSpec("linux.cgroupsPath", f"{shown!r} resolves to {cgdir}, {which} ({mine}); "
                              "deleting the container would signal the caller's processes")


def missing_levels(hierarchies, paths):
    """The dirs create() will make, top-down per hierarchy: what exists now is not ours."""
    missing = []
    for h in hierarchies:
        cgdir = paths[h.keys[0]]
        levels = []
        while cgdir != h.mountpoint and cgdir.startswith(h.mountpoint + "/") and not os.path.isdir(cgdir):
            levels.append(cgdir)
            cgdir = os.path.dirname(cgdir)
        for level in reversed(levels):
            if level not in missing:
                missing.append(level)
    return missing


def identity(pid):
    """(pid, start time) of a live process, or None: a pid alone may be reused."""
    from pyrunc.state.status import start_time
    started = start_time(pid)
    return None if started is None else [pid, started]
