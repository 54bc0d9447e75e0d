"""When the full-mode shim may exec itself into the lean mode: only between units of work, never in
the middle of one (an exec kills every other thread wherever it is).

Two kinds of work:
  busy      a request being handled, an exit being announced, an event waiting to be published:
            begin() ... end(), possibly in different threads. It also dates the last activity: the
            shim goes lean only after LEAN_AFTER seconds without any.
  sections  short steps that consume something from the kernel and must finish once started:
            reading a ttrpc frame, accepting a connection, reaping, copying a chunk of stdio,
            reading an OOM event. `with activity.section:` around them; the wait for input (poll,
            waitid with WNOWAIT) stays outside, so nothing is taken until the section is entered.
            Copying output does not date the activity: a container that writes all the time still
            lets the shim go lean (the lean mode copies too).
quiesce() freezes: new sections wait at their entry, the ones inside finish; then the caller checks
that nothing is left to read and execs (or thaws)."""
import threading
import time


class _Section:
    __slots__ = ("_a",)

    def __init__(self, activity):
        self._a = activity

    def __enter__(self):
        self._a.enter()

    def __exit__(self, *exc):
        self._a.leave()


class Activity:
    def __init__(self):
        self._cond = threading.Condition()
        self._busy = 0
        self._inside = 0
        self._frozen = False
        self._last = time.monotonic()
        self.section = _Section(self)

    def begin(self):
        with self._cond:
            self._busy += 1
            self._last = time.monotonic()

    def end(self):
        with self._cond:
            self._busy -= 1
            self._last = time.monotonic()
            self._cond.notify_all()

    def enter(self):
        with self._cond:
            while self._frozen:
                self._cond.wait()
            self._inside += 1

    def leave(self):
        with self._cond:
            self._inside -= 1
            self._cond.notify_all()

    def idle_left(self, idle):
        """Seconds until the shim will have been idle for `idle` seconds; None while busy."""
        with self._cond:
            if self._busy:
                return None
            return max(0.0, idle - (time.monotonic() - self._last))

    def quiesce(self, idle, timeout):
        """Freeze if nothing has been busy for `idle` seconds, and wait (up to timeout) for the
        sections in progress to end. -> True when frozen with nothing busy or inside (the caller
        then execs or calls thaw()); False, not frozen, otherwise."""
        with self._cond:
            if self._busy or time.monotonic() - self._last < idle:
                return False
            self._frozen = True
            self._cond.wait_for(lambda: self._busy or not self._inside, timeout)
            if not self._busy and not self._inside:
                return True
            self._frozen = False
            self._cond.notify_all()
            return False

    def thaw(self):
        with self._cond:
            self._frozen = False
            self._last = time.monotonic()
            self._cond.notify_all()
