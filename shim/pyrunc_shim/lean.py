"""The containerd-mode shim's lean mode: `python -S .../pyrunc_shim/lean.py <flags> -state-fd N lean`,
exec'd by the full mode (containerd_main serve) when it has been idle, in the same process.

It does the steady-state job and nothing else: copying every process's stdio (container output to
containerd's fifos, files and binary loggers, containerd's stdin fifo to the container) through the
same pumps as the full mode (pump.py), in one epoll loop. It imports no protobuf, no threading, no
socket: an idle container costs an interpreter and a few small modules.

Whatever needs more goes back to the full mode (handover.exec_into with the state, updated with the
pumps' fds and pending bytes): a new connection, a readable client connection (a request, or a
hang-up), a child that exited (SIGCHLD; the zombie is left to the full mode's reaper), an OOM event,
and any error of its own. Nothing is read from those fds here, so the full mode finds everything
where it was."""
import os
import sys

if __name__ == "__main__":  # run as a script under -S: the package's parent is not on sys.path
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import _signal  # noqa: E402
import select  # noqa: E402
import time  # noqa: E402

from pyrunc_shim import handover  # noqa: E402
from pyrunc_shim.pump import Pump  # noqa: E402

V2_OOM_INTERVAL = 1.0   # as oom.V2_INTERVAL
RETRY_EXEC = 1.0        # seconds between attempts when the exec of the full mode fails


class GoFull(Exception):
    """Something only the full mode handles (the message says what, for its debug log)."""


def _noop(*_):
    pass


class _Stream:
    """A pump and the place of its state in the handover (an io's "out" entry or its "in")."""
    __slots__ = ("io", "pump", "stream", "armed")

    def __init__(self, io, pump, stream):
        self.io, self.pump, self.stream, self.armed = io, pump, stream, None


class Lean:
    def __init__(self, state):
        self.state = state
        self.debug = state["debug"]
        self.ep = select.epoll()
        self.handlers = {}       # fd -> callable(events)
        self.streams = []
        for p in handover.procs(state):
            io = p["io"]
            for stream, *pump in io["out"]:
                self.streams.append(_Stream(io, Pump.restore(pump), stream))
            if io["in"] is not None:
                self.streams.append(_Stream(io, Pump.restore(io["in"]), "stdin"))
        self.ready = []          # streams whose destination epoll cannot watch (a regular file)
        self.sig_r = -1
        self.v2 = [o for o in handover.ooms(state) if "v2" in o]
        self.v2_next = time.monotonic() + V2_OOM_INTERVAL

    def log(self, msg):
        if self.debug:
            try:
                os.write(2, f"pyrunc-shim[{os.getpid()}] lean: {msg}\n".encode())
            except OSError:
                pass

    # -- setup ----------------------------------------------------------------------------------
    def setup(self):
        self.sig_r, sig_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        _signal.set_wakeup_fd(sig_w)
        _signal.signal(_signal.SIGCHLD, _noop)
        self._watch(self.sig_r, self._on_signal)
        st = self.state
        self._watch(st["listener"], self._wake("a new connection"))
        for fd in st["conns"]:
            self._watch(fd, self._wake("a request or a hang-up on a connection"))
        for oom in handover.ooms(st):
            if "v1" in oom:
                self._watch(oom["v1"], self._wake("an OOM event"))
        for s in self.streams:
            self._arm(s)
        if handover.zombie_waiting():  # exited before the handler was there
            raise GoFull("a child exited")

    def _watch(self, fd, fn):
        self.handlers[fd] = fn
        self.ep.register(fd, select.EPOLLIN)

    def _wake(self, why):
        def fn(_events):
            raise GoFull(why)
        return fn

    def _on_signal(self, _events):
        try:
            while os.read(self.sig_r, 512):
                pass
        except BlockingIOError:
            pass
        if handover.zombie_waiting():
            raise GoFull("a child exited")

    # -- copying --------------------------------------------------------------------------------
    def _arm(self, s):
        """Watch what the stream's pump waits for (its source, or its destination while a chunk is
        pending); at EOF, close what the full mode closes then."""
        want = s.pump.wants()
        if want is None:
            self._eof(s)
            return
        fd, ev = want
        try:
            self.ep.register(fd, ev)
        except PermissionError:  # a regular file (file://): always ready
            self.ready.append(s)
            return
        self.handlers[fd] = lambda _events: self._step(s)
        s.armed = fd

    def _step(self, s):
        # unwatched before the step: the step may close the fd (a dup of it, the pty master, stays)
        if s.armed is not None:
            self.ep.unregister(s.armed)
            del self.handlers[s.armed]
            s.armed = None
        s.pump.step()
        self._arm(s)

    def _eof(self, s):
        io = s.io
        if s.stream == "stdin":
            if not io["terminal"] and io["stdin_w"] >= 0:  # EOF on the fifo: EOF on the container's stdin
                os.close(io["stdin_w"])
                io["stdin_w"] = -1
        elif io["terminal"] and io["term_err"] >= 0:
            os.close(io["term_err"])
            io["term_err"] = -1

    # -- the loop -------------------------------------------------------------------------------
    def run(self):
        try:
            self.setup()
            self.log(f"running: {handover.describe(self.state)}")
            while True:
                self._once()
        except GoFull as e:
            return str(e)
        except Exception as e:  # never stop supervising: the full mode takes over
            return f"lean mode error: {type(e).__name__}: {e}"

    def _once(self):
        if self.ready:
            timeout = 0
        elif self.v2:
            timeout = max(0.0, self.v2_next - time.monotonic())
        else:
            timeout = -1
        for fd, ev in self.ep.poll(timeout):
            fn = self.handlers.get(fd)
            if fn is not None:
                fn(ev)
        ready, self.ready = self.ready, []
        for s in ready:
            s.pump.step()
            self._arm(s)
        if self.v2 and time.monotonic() >= self.v2_next:
            self.v2_next = time.monotonic() + V2_OOM_INTERVAL
            for w in list(self.v2):
                n = _oom_kills(w["v2"])
                if n is None:
                    self.v2.remove(w)  # the cgroup is gone; the full mode will see it too
                elif n > w["last"]:
                    raise GoFull("an OOM kill")

    # -- back to the full mode ------------------------------------------------------------------
    def export(self):
        """The pumps' fds and pending bytes back into the state (an EOF'd pump is dropped)."""
        for p in handover.procs(self.state):
            p["io"]["out"] = []
            p["io"]["in"] = None
        for s in self.streams:
            if s.pump.src < 0:
                continue
            if s.stream == "stdin":
                s.io["in"] = s.pump.export()
            else:
                s.io["out"].append([s.stream] + s.pump.export())
        return self.state


def _oom_kills(path):
    try:
        with open(path, "rb") as f:
            for line in f:
                k, _, v = line.partition(b" ")
                if k == b"oom_kill":
                    return int(v)
    except (OSError, ValueError):
        return None
    return 0


def main():
    fd = handover.state_fd(sys.argv)
    state = handover.load(fd)
    lean = Lean(state)
    why = lean.run()
    state = lean.export()
    state["why"] = why
    lean.log(f"to the full mode: {why}")
    while True:
        try:
            handover.exec_into(state, handover.full_argv)
        except OSError as e:
            lean.log(f"exec of the full mode failed: {e}; again in {RETRY_EXEC}s")
            time.sleep(RETRY_EXEC)


if __name__ == "__main__":
    main()
