"""Paying the cgroup migration lock's RCU grace period while other work goes on.

The first cgroup.procs write after a quiet spell waits for an RCU grace period (the kernel's
cgroup_threadgroup_rwsem turns its readers to the slow path: percpu_down_write -> rcu_sync_enter ->
synchronize_rcu), 5-15 ms on a busy machine; writes during the grace period that follows do not
wait. create, run and exec must move a child into the container's cgroups, but only after reading
the config or state: a thread that writes our own pid into our own cgroup (a move to where we
already are) as soon as the verb is known takes that wait while the main thread imports and reads.
It is only a speed-up, so every failure is ignored. wait() runs before the runtime forks: the
children that make namespace calls must come from a process with no other thread running.
"""
import _thread
import os

_pending = None


def _own_procs_file():
    with open("/proc/self/cgroup", "rb") as f:
        lines = f.read().decode(errors="replace").splitlines()
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controllers:
            bases = [controllers.replace("name=", "")]
        else:
            bases = ["unified", ""]
        for base in bases:
            candidate = os.path.join("/sys/fs/cgroup", base, path.lstrip("/"), "cgroup.procs")
            if os.path.exists(candidate):
                return candidate
    return None


def _write_own_pid(done):
    try:
        path = _own_procs_file()
        if path is not None:
            fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
            try:
                os.write(fd, str(os.getpid()).encode())
            finally:
                os.close(fd)
    except Exception:
        pass
    finally:
        done.release()


def start():
    global _pending
    if _pending is not None or os.geteuid() != 0:
        return
    done = _thread.allocate_lock()
    done.acquire()
    try:
        _thread.start_new_thread(_write_own_pid, (done,))
    except RuntimeError:
        return
    _pending = done


def wait():
    """Block until the warm-up write is over (if one was started)."""
    global _pending
    if _pending is not None:
        _pending.acquire()
        _pending = None
