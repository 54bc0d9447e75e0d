"""Reaps every child (the shim is a subreaper, so container processes reparented to it too) and
records each exit with its time. Exits nobody has claimed yet stay queued: a container init that
exits before Create/Start has learnt its pid is not lost (containerd's preStart queue).

The thread waits with waitid(WNOWAIT), which reaps nothing, and reaps inside an activity section:
a shim that execs into its lean mode never does so between reaping an exit and recording it, and
a zombie left for later is still there for the next program (lean mode sees it and comes back)."""
import os
import threading
import time

from pyrunc_shim.activity import Activity
from pyrunc_shim.children import exit_code, reaped

_KEEP_UNCLAIMED = 600.0  # seconds an exit of an unknown pid is kept for a late claim


class Reaper:
    def __init__(self, activity=None, unclaimed=None):
        self.activity = activity or Activity()
        self._cond = threading.Condition()
        self._exits = dict(unclaimed or {})  # pid -> (code, time) not yet claimed
        self._watchers = {}    # pid -> callback(code, time)
        self._thread = threading.Thread(target=self._loop, name="reaper", daemon=True)
        self._thread.start()

    def _loop(self):
        while True:
            try:
                os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOWAIT)
            except ChildProcessError:
                with self._cond:
                    self._cond.wait(0.2)  # no child yet: woken by kick() when one is spawned
                continue
            except InterruptedError:
                continue
            with self.activity.section:
                self._reap()

    def _reap(self):
        for pid, status in reaped():
            if not (os.WIFEXITED(status) or os.WIFSIGNALED(status)):
                continue
            now = time.time()
            code = exit_code(status)
            with self._cond:
                cb = self._watchers.pop(pid, None)
                if cb is None:
                    self._exits[pid] = (code, now)
                    self._prune(now)
                self._cond.notify_all()
            if cb is not None:
                cb(code, now)

    def _prune(self, now):
        for pid in [p for p, (_, t) in self._exits.items() if now - t > _KEEP_UNCLAIMED]:
            del self._exits[pid]

    def kick(self):
        with self._cond:
            self._cond.notify_all()

    def watch(self, pid, callback):
        """Call callback(code, time) when pid exits; at once (in this thread) if it already has."""
        with self._cond:
            got = self._exits.pop(pid, None)
            if got is None:
                self._watchers[pid] = callback
                return
        callback(*got)

    def wait(self, pid, timeout=None):
        """Block until pid (a child this shim spawned) exits -> (code, time)."""
        box = []
        done = threading.Event()
        self.watch(pid, lambda c, t: (box.append((c, t)), done.set()))
        if not done.wait(timeout):
            raise TimeoutError(f"process {pid} did not exit in {timeout}s")
        return box[0]

    def export(self):
        """Exits reaped and not claimed yet (the watchers are the service's, rebuilt by it)."""
        with self._cond:
            return dict(self._exits)
