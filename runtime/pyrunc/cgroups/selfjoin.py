"""A child that joins the container's cgroups by itself, without the kernel's migration lock.

Moving a process by writing its pid to cgroup.procs takes cgroup_threadgroup_rwsem for writing,
which after a quiet spell waits for an RCU grace period: 5-15 ms on this kind of host, the largest
single cost of create, run and exec (runc pays it too). Two moves skip that lock:
- cgroup v1: a single-threaded process writing "0" (itself, one thread) to the hierarchy's `tasks`
  file; a thread move of the caller needs no threadgroup lock.
- cgroup v2: clone3(CLONE_INTO_CGROUP) creates the child in the cgroup; no migration at all.
The runtime opens every file before it forks (paths are looked up on the host, never after the
child has entered the container's mount namespace); the child writes, then closes them.
Where the kernel cannot (no CLONE_INTO_CGROUP), the runtime moves the child the old way.
"""
import os

from pyrunc.cgroups import fs
from pyrunc.errors import StepError


class SelfJoin:
    def __init__(self, targets, clone_into=True):
        """targets: (version, cgroup dir) pairs, one per hierarchy, "v1" or "v2".
        clone_into=False: the v2 dir is not known to be fresh (see _killed_at_birth), so the
        child is moved by a cgroup.procs write instead."""
        self._v2_dir = self._v2_fd = None
        self._tasks = []   # (path, fd) of each v1 hierarchy's tasks file
        self._v2_pending = not clone_into
        path = None
        try:
            for version, cgdir in targets:
                if version == "v2":
                    path = cgdir
                    self._v2_dir = cgdir
                    self._v2_fd = os.open(cgdir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
                else:
                    path = os.path.join(cgdir, "tasks")
                    self._tasks.append((path, os.open(path, os.O_WRONLY | os.O_CLOEXEC)))
        except OSError as e:
            self.close()
            raise StepError("open cgroup", path, e) from None

    def fork(self):
        """os.fork(), the child already in the v2 cgroup when the kernel can do that."""
        if self._v2_fd is not None and not self._v2_pending:
            from pyrunc.sys.calls import clone_fork
            try:
                pid = clone_fork(cgroup_fd=self._v2_fd)
            except OSError as e:
                raise StepError("join cgroup", self._v2_dir, e) from None
            if pid == 0 or pid is not None and not _killed_at_birth(pid):
                return pid
            self._v2_pending = True
        return os.fork()

    def clone(self, namespaces):
        """A child born in new namespaces (CLONE_NEW* flags) and in the v2 cgroup, which then joins
        v1 by join_child(); None when the kernel cannot (nothing was started): the caller forks
        by fork() instead."""
        if self._v2_pending and self._v2_fd is not None:
            return None
        from pyrunc.sys.calls import clone_fork
        try:
            pid = clone_fork(namespaces, self._v2_fd)
        except OSError as e:
            raise StepError("clone container init", self._v2_dir, e) from None
        if pid and self._v2_fd is not None and _killed_at_birth(pid):
            self._v2_pending = True  # fork() moves the child by cgroup.procs instead
            return None
        return pid

    def join_child(self):
        """In the child, before it enters any namespace: join every v1 hierarchy."""
        try:
            for path, fd in self._tasks:
                try:
                    os.write(fd, b"0")
                except OSError as e:
                    raise StepError("join cgroup", path, e) from None
        finally:
            self.close()

    def join_parent(self, pid):
        """In the runtime after the fork: what the child could not do itself (v2 without clone3)."""
        try:
            if self._v2_pending and self._v2_dir is not None:
                path = os.path.join(self._v2_dir, "cgroup.procs")
                try:
                    fs.write(path, str(pid))
                except OSError as e:
                    raise StepError("join cgroup", path, e) from None
        finally:
            self.close()

    def close(self):
        for _, fd in self._tasks:
            os.close(fd)
        self._tasks = []
        if self._v2_fd is not None:
            os.close(self._v2_fd)
            self._v2_fd = None


def _killed_at_birth(pid):
    """True (and the child reaped) when the kernel SIGKILLed a CLONE_INTO_CGROUP child in the fork.

    The kernel kills a child cloned into a cgroup2 dir whose count of `cgroup.kill` writes differs
    from the one of the parent's own cgroup (kill_seq, since Linux 6.14; seen here on 6.18): any
    cgroup that has seen a cgroup.kill, or a caller in one. The SIGKILL is queued before clone3
    returns and the child never runs a user instruction, so nothing was done: the child is
    reaped and moved the old way (a cgroup.procs write) instead.
    """
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            text = f.read()
    except OSError:
        text = b""
    killed = False
    for line in text.splitlines():
        if line.startswith((b"SigPnd:", b"ShdPnd:")) and int(line.split()[1], 16) & (1 << 8):
            killed = True
    if not killed:
        info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        killed = info is not None and info.si_code == os.CLD_KILLED and info.si_status == 9
    if killed:
        os.waitpid(pid, 0)
    return killed
