"""A build's private scratch space, <root>/build/<id>/, held by an flock for the build's life:

    lock            flock'ed by the running build
    runtime/        the OCI runtime's --root for RUN containers
    step/           the working mount of one step: upper/ work/ merged/ (+ config.json for RUN)
    empty/          the lower dir of a working mount on `scratch`

The store lock is taken only for the short store writes (layer, image, cache record), so builds
run side by side. A build dir whose lock nobody holds belongs to a build that was killed: the next
build (or any build start) unmounts it, deletes its containers and removes it."""
import fcntl
import os
import subprocess

from pyctr.errors import PyctrError
from pyctr.image.fsutil import rmtree

_MNT_DETACH = 2


def _mounts_under(path):
    out = []
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                mp = line.split()[4].encode().decode("unicode_escape")
                if mp == path or mp.startswith(path + "/"):
                    out.append(mp)
    except OSError:
        pass
    return out


def _umount_all(path):
    from pyrunc.sys import calls
    for mp in sorted(_mounts_under(path), key=len, reverse=True):
        try:
            calls.umount2(mp, _MNT_DETACH)
        except OSError:
            pass


def _delete_containers(runtime, state_root):
    if not os.path.isdir(state_root):
        return
    for cid in os.listdir(state_root):
        subprocess.run([runtime, "--root", state_root, "delete", "--force", cid],
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def default_runtime():
    """pyrunc beside the running pyctr (its venv), else on PATH; None if neither."""
    import shutil
    import sys
    here = os.path.join(os.path.dirname(os.path.abspath(sys.argv[0])), "pyrunc")
    return here if os.access(here, os.X_OK) else shutil.which("pyrunc")


def clean_stale(store_root, runtime=None):
    """Remove the work dirs of builds that died (their lock is free): containers, mounts, files.
    Called at every build's start and by the store's recovery under its lock."""
    base = os.path.join(store_root, "build")
    runtime = runtime or default_runtime() or "pyrunc"
    if not os.path.isdir(base):
        return
    for name in os.listdir(base):
        d = os.path.join(base, name)
        try:
            fd = os.open(os.path.join(d, "lock"), os.O_RDWR | os.O_CLOEXEC)
        except OSError:
            fd = None
            if name.startswith(".new-") and _age(d) < 60:
                continue  # a build between its mkdir and its lock (Workspace.__init__)
        try:
            if fd is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # a running build
            _delete_containers(runtime, os.path.join(d, "runtime"))
            _umount_all(d)
            rmtree(d)
        finally:
            if fd is not None:
                os.close(fd)


def _age(path):
    import time
    try:
        return time.time() - os.stat(path).st_mtime
    except OSError:
        return 0


class Workspace:
    def __init__(self, store_root, runtime):
        self.runtime = runtime
        clean_stale(store_root, runtime)
        base = os.path.join(store_root, "build")
        os.makedirs(base, mode=0o700, exist_ok=True)
        name = os.urandom(8).hex()
        new = os.path.join(base, ".new-" + name)
        os.makedirs(new, mode=0o700)
        self._fd = os.open(os.path.join(new, "lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        # only a locked dir gets its real name: another build's clean_stale never takes it for dead
        self.dir = os.path.join(base, name)
        os.rename(new, self.dir)
        self.state_root = os.path.join(self.dir, "runtime")
        self.empty = os.path.join(self.dir, "empty")
        os.makedirs(self.empty, mode=0o755)

    def close(self):
        _delete_containers(self.runtime, self.state_root)
        _umount_all(self.dir)
        rmtree(self.dir)
        os.close(self._fd)


class WorkingMount:
    """An overlay of `lowers` (uppermost first) with a fresh upper, at step/merged."""

    def __init__(self, ws, lowers):
        from pyrunc.sys import calls
        self.ws = ws
        self.dir = os.path.join(ws.dir, "step-" + os.urandom(4).hex())
        self.upper = os.path.join(self.dir, "upper")
        self.work = os.path.join(self.dir, "work")
        self.merged = os.path.join(self.dir, "merged")
        for d in (self.upper, self.work, self.merged):
            os.makedirs(d, mode=0o755)
        data = f"index=off,lowerdir={':'.join(lowers or [ws.empty])},upperdir={self.upper},workdir={self.work}"
        if len(data) >= os.sysconf("SC_PAGE_SIZE"):
            raise PyctrError(f"overlay mount options exceed one page ({len(data)} bytes): too many layers")
        try:
            calls.mount("overlay", self.merged, "overlay", 0, data)
        except OSError as e:
            rmtree(self.dir)
            raise PyctrError(f"cannot mount the build's working overlay on {self.merged}: {e}") from None
        self.mounted = True

    def unmount(self):
        from pyrunc.sys import calls
        if self.mounted:
            try:
                calls.umount2(self.merged, 0)
            except OSError:
                calls.umount2(self.merged, _MNT_DETACH)
            self.mounted = False

    def remove(self):
        self.unmount()
        rmtree(self.dir)
