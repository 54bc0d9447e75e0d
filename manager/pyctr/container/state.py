"""A container's state, derived on every look, never read from a stored string:

    never started                         created
    exit file of the current run          exited (its code; FinishedAt = the file's mtime)
    started before this boot              exited (255, as Docker after a host crash)
    its monitor alive                     running, or paused (the cgroup freezer says so)
    a restart pending (cleanup's marker)  restarting
    monitor gone, no exit file            the runtime decides: running/paused, else exited (255)

The record's "Run" says which monitor (pid + start time, so a reused pid is not mistaken for it) and
which boot; the exit file is written by the monitor (pyrunc-shim -0 <container dir>)."""
import os
import time

LOST_EXIT = 255


def boot_id():
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip()
    except OSError:
        return ""


def proc_start(pid):
    """The process's start time in clock ticks since boot, or None if it is gone (or a zombie)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None
    if fields[0] in (b"Z", b"X"):
        return None
    return int(fields[19])


def alive(pid, start):
    return bool(pid) and proc_start(pid) == start


class State:
    __slots__ = ("status", "pid", "exit_code", "finished_at", "monitored", "error")

    def __init__(self, status, pid=0, exit_code=0, finished_at=None, monitored=False, error=""):
        self.status, self.pid, self.exit_code = status, pid, exit_code
        self.finished_at, self.monitored, self.error = finished_at, monitored, error

    @property
    def running(self):
        return self.status in ("running", "paused", "restarting")


def _read_int(path):
    try:
        with open(path) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def frozen(cid):
    for path in (f"/sys/fs/cgroup/freezer/pyctr/{cid}/freezer.state",
                 f"/sys/fs/cgroup/pyctr/{cid}/cgroup.freeze", f"/sys/fs/cgroup/unified/pyctr/{cid}/cgroup.freeze"):
        try:
            with open(path) as f:
                v = f.read().strip()
        except OSError:
            continue
        return v in ("FROZEN", "FREEZING", "1")
    return False


def derive(store, rec, runtime=None, _again=True):
    """runtime: a Runtime (runtime.py), asked only when the monitor is gone without an exit file."""
    st = _derive(store, rec, runtime)
    if _again and st.status == "exited" and st.exit_code == LOST_EXIT and rec.get("Run"):
        # the record may have changed since it was read (settled, or restarted): read it again
        try:
            fresh = store.load(rec["Id"])
        except Exception:  # removed meanwhile: what was seen stands
            return st
        if fresh.get("Run") != rec.get("Run"):
            return derive(store, fresh, runtime, _again=False)
    return st


def _derive(store, rec, runtime):
    cid = rec["Id"]
    run = rec.get("Run")
    restarting = rec.get("Restarting")
    if restarting and alive(restarting.get("Pid"), restarting.get("Start")):
        return State("restarting", exit_code=rec.get("ExitCode", 0), finished_at=rec.get("FinishedAt"))
    if not run:
        if rec.get("FinishedAt"):
            return State("exited", exit_code=rec.get("ExitCode", 0), finished_at=rec["FinishedAt"],
                         error=rec.get("Error", ""))
        return State("created", error=rec.get("Error", ""))
    exit_path = store.path(cid, "exit")
    code = _read_int(exit_path)
    if code is not None:
        try:
            mtime = os.stat(exit_path).st_mtime
        except OSError:
            mtime = time.time()
        return State("exited", exit_code=code, finished_at=mtime)
    if run.get("BootId") != boot_id():
        return State("exited", exit_code=LOST_EXIT, finished_at=run.get("StartedAtEpoch"))
    if alive(run.get("MonitorPid"), run.get("MonitorStart")):
        return State("paused" if frozen(cid) else "running", pid=run.get("Pid", 0), monitored=True)
    if runtime is not None:
        st = runtime.state(cid)
        if st and st.get("status") in ("running", "paused"):
            return State(st["status"], pid=st.get("pid", 0))
    if alive(run.get("Pid"), run.get("PidStart")):  # no runtime asked: trust the process itself
        return State("paused" if frozen(cid) else "running", pid=run["Pid"])
    return State("exited", exit_code=LOST_EXIT, finished_at=time.time())
