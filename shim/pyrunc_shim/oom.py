"""OOM kills of the container's cgroup: cgroup v1 memory.oom_control through an eventfd registered in
cgroup.event_control; cgroup v2 memory.events' oom_kill counter, polled. A watch's export() is what
the lean mode needs to notice an OOM (the eventfd, or the file and the count seen so far) and hand
it back to the full mode, which tells it; restore() picks a watch up again from that."""
import os
import select
import threading
import time

V2_INTERVAL = 1.0  # seconds between two reads of memory.events


def _cgroup_paths(pid):
    out = {}
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            _, ctrls, path = line.rstrip("\n").split(":", 2)
            for c in ctrls.split(",") if ctrls else [""]:
                out[c] = path
    return out


def oom_kills(events_path):
    """memory.events' oom_kill counter (cgroup v2); None when the cgroup is gone."""
    try:
        with open(events_path) as f:
            for line in f:
                k, _, v = line.partition(" ")
                if k == "oom_kill":
                    return int(v)
    except (OSError, ValueError):
        return None
    return 0


class _V1:
    """The eventfd fires at each OOM, and once more when the cgroup is removed."""

    def __init__(self, efd, cgdir, on_oom, activity):
        self.efd, self.dir, self.on_oom, self.activity = efd, cgdir, on_oom, activity
        threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self):
        p = select.poll()
        p.register(self.efd, select.POLLIN)
        while True:
            p.poll()
            with self.activity.section:
                try:
                    os.eventfd_read(self.efd)
                except BlockingIOError:
                    continue
                except OSError:
                    self._close()
                    return
                if not os.path.isdir(self.dir):  # only a live cgroup had an OOM
                    self._close()
                    return
                self.on_oom()

    def _close(self):
        if self.efd >= 0:
            os.close(self.efd)
            self.efd = -1

    def export(self):
        return {"v1": self.efd, "dir": self.dir} if self.efd >= 0 else None


class _V2:
    def __init__(self, events, last, on_oom, activity):
        self.events, self.last, self.on_oom, self.activity = events, last, on_oom, activity
        self.gone = False
        threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self):
        while True:
            with self.activity.section:
                n = oom_kills(self.events)
                if n is None:
                    self.gone = True
                    return
                if n > self.last:
                    self.on_oom()
                self.last = n
            time.sleep(V2_INTERVAL)

    def export(self):
        return None if self.gone else {"v2": self.events, "last": self.last}


def watch(pid, on_oom, log, activity):
    try:
        paths = _cgroup_paths(pid)
    except OSError:
        return None
    if "memory" in paths and os.path.isdir("/sys/fs/cgroup/memory"):
        d = "/sys/fs/cgroup/memory" + paths["memory"]
        try:
            efd = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
            # the registration holds the cgroup, not oom_control's fd: it is closed at once
            ctl = os.open(os.path.join(d, "memory.oom_control"), os.O_RDONLY | os.O_CLOEXEC)
            try:
                with open(os.path.join(d, "cgroup.event_control"), "w") as f:
                    f.write(f"{efd} {ctl}")
            finally:
                os.close(ctl)
        except OSError as e:
            log(f"oom watch {d}: {e}")
            return None
        return _V1(efd, d, on_oom, activity)
    unified = "/sys/fs/cgroup" if os.path.exists("/sys/fs/cgroup/cgroup.controllers") else None
    if unified and "" in paths:
        events = unified + paths[""] + "/memory.events"
        return _V2(events, oom_kills(events) or 0, on_oom, activity)
    return None


def restore(exported, on_oom, activity):
    if not exported:
        return None
    if "v1" in exported:
        return _V1(exported["v1"], exported["dir"], on_oom, activity)
    return _V2(exported["v2"], exported["last"], on_oom, activity)
