"""The cgroup manager: one interface over cgroup v1, hybrid and v2 hosts, and its factory.

open_manager() reads the host's mounts once (at create/exec time) and resolves where the container's
cgroup lives in every hierarchy; to_state()/from_state() carry that result in state.json so that
state, kill and delete never parse mountinfo again. Version-specific creation and freezer choice
live in v1.py and v2.py; everything that only needs the resolved directories is here.
"""
import errno
import os
import time

from ..errors import StepError
from . import freezer as fz
from . import fs

# systemd's own test for "booted with systemd" (sd_booted(3)).
SYSTEMD_RUNNING_DIR = "/run/systemd/system"

# How long destroy waits for a just-killed process to leave its cgroup (rmdir says EBUSY until the
# kernel has finished tearing it down).
RMDIR_TIMEOUT = 2.0


def open_manager(cgroups_path, container_id, systemd=False, root="/sys/fs/cgroup",
                 mountinfo_text=None, self_cgroup_text=None, systemd_running_dir=None,
                 pid1_cgroup_text=None):
    """The manager for a container's cgroup, resolved like runc's cgroupfs driver.

    cgroups_path: absolute -> below each hierarchy's mountpoint; relative -> below the caller's own
    cgroup (on v2-only hosts below its parent, as runc does: the caller's cgroup holds processes, so
    its children could not get domain controllers); None/"" -> relative path <container_id>.
    """
    systemd_running_dir = systemd_running_dir or SYSTEMD_RUNNING_DIR
    if systemd and not os.path.isdir(systemd_running_dir):
        raise StepError("cgroup", None, "systemd cgroup driver requested but systemd is not "
                        f"running ({systemd_running_dir} is missing)")
    from . import mountinfo

    if mountinfo_text is None:
        mountinfo_text = _read_proc(mountinfo.read_mountinfo, "/proc/self/mountinfo")
    hierarchies = mountinfo.cgroup_hierarchies(mountinfo_text, root)
    mode = mountinfo.detect_mode(hierarchies, root)
    if systemd:
        from .systemd import open_systemd_manager
        if pid1_cgroup_text is None and mode != "v2":
            pid1_cgroup_text = _read_proc(_read_pid1_cgroup, "/proc/1/cgroup")
        manager = open_systemd_manager(cgroups_path, container_id, hierarchies, mode,
                                       pid1_cgroup_text)
        if mode != "v2" and "devices" not in manager.paths:
            raise StepError("cgroup", root, "the v1 devices controller is not mounted; it is "
                            "required to restrict device access")
        return manager

    if cgroups_path and mode != "v2" and not cgroups_path.startswith("/") \
            and cgroups_path.count(":") == 2:
        raise StepError("cgroup", cgroups_path, 'this is the systemd "slice:prefix:name" syntax, '
                        "which needs --systemd-cgroup; the cgroupfs driver takes a path")
    inner = clean_path(cgroups_path) or clean_path(container_id)
    own = None
    if not inner.startswith("/"):
        own = _own_cgroup(self_cgroup_text)
    paths = resolve_paths(hierarchies, mode, inner, own)
    from .ownership import check_cgroups_path, missing_levels
    check_cgroups_path(cgroups_path, paths, hierarchies, own)
    planned = missing_levels(hierarchies, paths)
    if own is None and any(paths[h.keys[0]] not in planned for h in hierarchies):
        # An absolute path naming a cgroup that exists may be the caller's or above it (a new
        # one cannot be): only then is /proc/self/cgroup worth reading.
        check_cgroups_path(cgroups_path, paths, hierarchies, _own_cgroup(self_cgroup_text))

    if mode != "v2" and "devices" not in paths:
        # Without it nothing stops the container from opening host devices (runc refuses too).
        raise StepError("cgroup", root, "the v1 devices controller is not mounted; it is required "
                        "to restrict device access")
    if mode == "v2":
        from .v2 import V2Manager
        manager = V2Manager(paths, hierarchies)
    else:
        from .v1 import V1Manager
        manager = V1Manager(paths, hierarchies, version=mode)
    manager.planned = planned
    return manager


def _own_cgroup(self_cgroup_text):
    from . import mountinfo
    if self_cgroup_text is None:
        self_cgroup_text = _read_proc(mountinfo.read_self_cgroup, "/proc/self/cgroup")
    return mountinfo.parse_self_cgroup(self_cgroup_text)


def from_state(data):
    """Rebuild a manager from to_state() output, without looking at the host's mounts."""
    from .mountinfo import Hierarchy

    if isinstance(data, dict) and data.get("driver") == "systemd":
        from .systemd import from_state as systemd_from_state
        return systemd_from_state(data)
    try:
        version = data["version"]
        paths = dict(data["paths"])
        hierarchies = [Hierarchy.from_dict(h) for h in data["hierarchies"]]
        created = list(data.get("created", ()))
        planned = list(data.get("planned", ()))
        foreign = [list(p) for p in data.get("foreign", ())]
    except (KeyError, TypeError) as exc:
        raise StepError("load cgroup state", None, f"missing or malformed field {exc}") from None
    if version == "v2":
        from .v2 import V2Manager
        manager = V2Manager(paths, hierarchies, created)
    elif version in ("v1", "hybrid"):
        from .v1 import V1Manager
        manager = V1Manager(paths, hierarchies, created, version=version)
    else:
        raise StepError("load cgroup state", None, f"unknown cgroup version {version!r}")
    manager.planned, manager.foreign = planned, foreign
    return manager


def clean_path(path):
    """runc's CleanPath: normalise, and never let a relative path climb out with "..".."""
    if not path:
        return ""
    if path.startswith("/"):
        return os.path.normpath("/" + path.lstrip("/"))
    return os.path.relpath(os.path.normpath("/" + path), "/")


def resolve_paths(hierarchies, mode, inner, own):
    """{key: absolute cgroup dir} for every hierarchy; `inner` is a clean_path() result.

    `own` is parse_self_cgroup() output, needed only for a relative `inner`.
    """
    from .mountinfo import own_cgroup_dir

    paths = {}
    for h in hierarchies:
        if inner.startswith("/"):
            cgdir = os.path.normpath(h.mountpoint + inner)
        else:
            base = own_cgroup_dir(h, own)
            if mode == "v2" and base != h.mountpoint:
                base = os.path.dirname(base)
            cgdir = os.path.normpath(os.path.join(base, inner))
        for key in h.keys:
            paths[key] = cgdir
    return paths


def _read_pid1_cgroup():
    with open("/proc/1/cgroup") as f:
        return f.read()


def _read_proc(reader, path):
    try:
        return reader()
    except OSError as exc:
        raise StepError("read", path, exc) from exc


class CgroupManager:
    """The container's cgroup in every hierarchy of the host.

    version: "v1", "v2" or "hybrid". paths: hierarchy key -> absolute cgroup dir (v1 keys are the
    controller or "name=..." of the hierarchy, co-mounted controllers share a dir; "" is the v2 /
    unified dir). created: the dirs create() made, which are all destroy() removes. planned: the
    dirs create() is about to make, recorded in state.json before it makes them, so that a create
    killed half way leaves dirs that `delete --force` still finds (cgroups/ownership.py); empty once
    create() has finished either way. foreign: [pid, start time] of the processes that were already
    in a cgroup dir the container did not create (a shared cgroup): never the container's.
    """

    version = None

    def __init__(self, paths, hierarchies, created=()):
        self.paths = dict(paths)
        self.hierarchies = list(hierarchies)
        self.created = list(created)
        self.planned = []
        self.foreign = []

    # --- per-version parts (v1.py, v2.py) -------------------------------------------------------

    def _create_in(self, hierarchy, cgdir):
        """Make cgdir (mkdir -p via _mkdir_p) and whatever this hierarchy needs before a join."""
        raise NotImplementedError

    def _freezer(self):
        """(state, freeze, thaw, dir) of the freezer to use, or None when there is none."""
        raise NotImplementedError

    def _pids_dir(self):
        raise NotImplementedError

    # --- the interface --------------------------------------------------------------------------

    def create(self):
        if self.freezer_state() == fz.FROZEN:
            # A process joining a frozen cgroup would hang before exec, with nobody to thaw it.
            raise StepError("create cgroup", self._freezer()[3],
                            "the cgroup already exists and is frozen")
        try:
            for h in self.hierarchies:
                self._create_in(h, self.paths[h.keys[0]])
        except BaseException:
            self.planned = []  # created is exact now: a planned dir we did not make is not ours
            try:
                self.destroy()
            except StepError:
                pass  # the creation error is the one to report
            raise
        self.planned = []
        self.foreign = self._foreign_processes()

    def owned(self):
        """True when this container's create made every one of its cgroup dirs: everything in
        them is the container's, to freeze, cgroup.kill and remove."""
        return all(d in self.created for d in self._dirs())

    def _foreign_processes(self):
        """[pid, start time] of the processes already in the dirs create() did not make."""
        from .ownership import identity
        found = []
        for cgdir in self._dirs():
            if cgdir not in self.created:
                found += [i for i in map(identity, _pids_recursive(cgdir)) if i and i not in found]
        return found

    def self_join(self):
        """A SelfJoin for the child about to be forked (cgroups/selfjoin.py), or None when the
        child must be moved by join(pid) instead."""
        from .selfjoin import SelfJoin
        # Born into the v2 dir only when create made it: a dir that existed may have seen a
        # cgroup.kill, and then the kernel kills a child cloned into it (selfjoin._killed_at_birth).
        unified = self.paths.get("")
        return SelfJoin(self.join_targets(), clone_into=unified is None or unified in self.created)

    def join_targets(self):
        """(version, dir) of each cgroup dir once, in hierarchy order."""
        return list({self.paths[h.keys[0]]: (h.version, self.paths[h.keys[0]]) for h in self.hierarchies}.values())

    def join(self, pid):
        for cgdir in self._dirs():
            path = os.path.join(cgdir, "cgroup.procs")
            try:
                fs.write(path, str(pid))
            except OSError as exc:
                raise StepError("join cgroup", path, exc) from exc

    def destroy(self):
        # Planned but not known to be made (create was killed while making them): only empty
        # dirs go, never by force; a process in one is a just-spawned init dying with its runtime.
        for cgdir in reversed(self.planned):
            if cgdir not in self.created:
                _remove_tree(cgdir, recursive=False)
        self.planned = []
        leaves = set(self.paths.values())
        mountpoints = {h.mountpoint for h in self.hierarchies}
        first_error, failed = None, []
        # Creation order is top-down per hierarchy, so reversed it is bottom-up.
        for cgdir in reversed(list(self.created)):
            if any(f.startswith(cgdir + "/") for f in failed):
                continue  # still holds a cgroup we failed to remove: keep it ours for the retry
            try:
                if cgdir in mountpoints:
                    pass  # a hierarchy root is never ours to remove, whatever the state says
                elif cgdir in leaves:
                    _remove_tree(cgdir)
                else:
                    _remove_shared_parent(cgdir)
            except StepError as exc:
                first_error = first_error or exc
                failed.append(cgdir)
                continue
            self.created.remove(cgdir)
        if first_error is not None:
            raise first_error

    def pids(self):
        return sorted(set(_pids_recursive(self._pids_dir())))

    def freezer_state(self):
        f = self._freezer()
        return fz.THAWED if f is None else f[0](f[3])

    def freeze(self):
        f = self._freezer()
        if f is None:
            raise StepError("freeze cgroup", None, "no freezer is available for this cgroup")
        f[1](f[3])

    def thaw(self):
        f = self._freezer()
        if f is None:
            raise StepError("thaw cgroup", None, "no freezer is available for this cgroup")
        f[2](f[3])

    def signal_some(self, sig, belongs, timeout=2.0):
        """Signal the processes of the cgroup for which belongs(pid) is true, in a cgroup that is
        not the container's own: no cgroup.kill, no freezing (others' processes live there). For
        SIGKILL, again until none is left, since one may have forked while we looked."""
        import _signal as signal

        deadline = time.monotonic() + timeout
        me = os.getpid()
        while True:
            victims = [pid for pid in self.pids() if pid != me and belongs(pid)]
            for pid in victims:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
                except OSError as exc:
                    raise StepError("signal", f"pid {pid}", exc) from exc
            if sig != signal.SIGKILL or not victims or time.monotonic() > deadline:
                return
            time.sleep(0.005)

    def kill_all(self, sig):
        """Signal every process in the cgroup: only for a cgroup that is the container's own."""
        import _signal as signal  # the signal package imports enum: 2 ms at every start

        unified = self.paths.get("")
        if sig == signal.SIGKILL and unified is not None:
            path = os.path.join(unified, "cgroup.kill")
            try:
                fs.write(path, "1")
            except OSError as exc:
                # ENOENT: a kernel before 5.14, or the cgroup is gone; the walk below handles both.
                if exc.errno != errno.ENOENT:
                    raise StepError("kill cgroup", path, exc) from exc
            else:
                # On a hybrid host a paused container sits in the v1 freezer, where even SIGKILL
                # waits for a thaw.
                if self.freezer_state() == fz.FROZEN:
                    self.thaw()
                return
        # Frozen, nobody can fork a child we would miss between listing and signalling.
        was = self.freezer_state()
        froze = False
        if was != fz.FROZEN and self._freezer() is not None:
            try:
                self.freeze()
                froze = True
            except StepError:
                pass  # still signal what we see; a missed fork beats not signalling at all
        failed = None
        try:
            for pid in self.pids():
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
                except OSError as exc:
                    failed = failed or StepError("signal", f"pid {pid}", exc)
        finally:
            # A v1-frozen task acts on SIGKILL only once thawed; other signals stay pending so a
            # container that was paused stays paused.
            if froze or (was == fz.FROZEN and sig == signal.SIGKILL):
                self.thaw()
        if failed is not None:
            raise failed

    def mount_plan(self, cgroupns):
        """What to mount at the container's /sys/fs/cgroup, as (subdir, fstype, data, host_source).

        The same plan serves both ways of mounting: with cgroupns the runtime mounts fresh
        filesystems using fstype+data (the kernel roots them at the container's cgroup), without
        it bind-mounts host_source. fstype "symlink" entries are links (data = target) that let
        co-mounted controllers be found under their own names, as on the host.
        """
        if self.version == "v2":
            return [("", "cgroup2", "", self.paths[""])]
        plan, names = [], set()
        for h in self.hierarchies:
            subdir = os.path.basename(h.mountpoint)
            names.add(subdir)
            plan.append((subdir, h.fstype, h.mount_data(), self.paths[h.keys[0]]))
        links = []
        for h in self.hierarchies:
            subdir = os.path.basename(h.mountpoint)
            for controller in h.controllers if h.version == "v1" else ():
                if controller not in names:
                    names.add(controller)
                    links.append((controller, "symlink", subdir, ""))
        return plan + links

    def to_state(self):
        data = {"version": self.version, "paths": dict(self.paths),
                "hierarchies": [h.to_dict() for h in self.hierarchies],
                "created": list(self.created)}
        if self.planned:
            data["planned"] = list(self.planned)
        if self.foreign:
            data["foreign"] = [list(p) for p in self.foreign]
        return data

    # --- shared helpers -------------------------------------------------------------------------

    def _dirs(self):
        """Each cgroup dir once, in hierarchy order (co-mounted controllers share one)."""
        return list(dict.fromkeys(self.paths[h.keys[0]] for h in self.hierarchies))

    def _mkdir_p(self, mountpoint, cgdir):
        """mkdir -p below the mountpoint, recording what we made; returns every level, top first."""
        if not (cgdir == mountpoint or cgdir.startswith(mountpoint.rstrip("/") + "/")):
            raise StepError("create cgroup", cgdir, f"not below the hierarchy at {mountpoint}")
        levels = [mountpoint]
        for part in os.path.relpath(cgdir, mountpoint).split("/"):
            if part == ".":
                continue
            level = os.path.join(levels[-1], part)
            try:
                fs.mkdir(level)
                self.created.append(level)
            except FileExistsError:
                pass
            except OSError as exc:
                raise StepError("create cgroup", level, exc) from exc
            levels.append(level)
        return levels


def _remove_tree(cgdir, recursive=True):
    """rmdir a container cgroup and the sub-cgroups its processes made, deepest first.
    recursive=False: only cgdir, and only when it holds no cgroup (someone else's, then)."""
    try:
        children = fs.subdirs(cgdir)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise StepError("remove cgroup", cgdir, exc) from exc
    if children and not recursive:
        return
    for child in children:
        _remove_tree(child)
    deadline = time.monotonic() + RMDIR_TIMEOUT
    delay = 0.001
    while True:
        try:
            fs.rmdir(cgdir)
            return
        except FileNotFoundError:
            return
        except OSError as exc:
            # EBUSY while a killed process is still being reaped out of the cgroup.
            if exc.errno != errno.EBUSY or time.monotonic() >= deadline:
                raise StepError("remove cgroup", cgdir, exc) from exc
        time.sleep(delay)
        delay = min(delay * 2, 0.1)


def _remove_shared_parent(cgdir):
    """rmdir an intermediate level we made, unless another container's cgroup now lives in it."""
    try:
        fs.rmdir(cgdir)
    except OSError as exc:
        if exc.errno not in (errno.ENOENT, errno.EBUSY, errno.ENOTEMPTY):
            raise StepError("remove cgroup", cgdir, exc) from exc


def _pids_recursive(cgdir):
    path = os.path.join(cgdir, "cgroup.procs")
    try:
        pids = fs.read_pids(path)
        children = fs.subdirs(cgdir)
    except FileNotFoundError:
        return []  # the cgroup (or a sub-cgroup) went away while we looked: no processes there
    except (OSError, ValueError) as exc:
        raise StepError("read cgroup processes", path, exc) from exc
    for child in children:
        pids.extend(_pids_recursive(child))
    return pids
