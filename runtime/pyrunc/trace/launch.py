"""Starting the tracer: a detached process (its own session, stdio on /dev/null, no fd of pyrunc's
but its own) that seizes one pid and writes the trace file until no tracee is left.

The same for every caller: a foreground `run`/`exec` waits for it to finish the file after the
container's process has ended (Handle.wait); `create`/`run -d`/`exec -d` return while it goes on
tracing. Its own process, not pyrunc's loop, so the foreground's signal forwarding and pty proxy stay
as they are, and a detached container is traced past the pyrunc command that created it. The
attach happens while the process cannot have started the container's program (init blocked on
exec.fifo, exec's intermediate before it forks), so nothing of the container goes untraced.
"""
import os

from pyrunc.errors import PyruncError, StepError


class TraceError(PyruncError):
    """Tracing could not start; the container was not touched."""


class Handle:
    def __init__(self, done_fd, path):
        self.done_fd, self.path = done_fd, path

    def wait(self, timeout=30.0):
        """Until the tracer has written its last record (it closes its end of the pipe on exit)."""
        import select
        poller = select.poll()
        poller.register(self.done_fd, select.POLLIN | select.POLLHUP)
        try:
            finished = bool(poller.poll(int(timeout * 1000)))
        finally:
            self.close()
        if not finished:
            from pyrunc.log import logger
            logger.warning(f"the tracer writing {self.path} has not finished after {timeout:.0f}s")
        return finished

    def close(self):
        if self.done_fd is not None:
            os.close(self.done_fd)
            self.done_fd = None


def start(pid, path, follow_root_children=False):
    """Seize pid with a detached tracer writing to path; returns a Handle once attached.
    follow_root_children: pid is exec's intermediate, the process to trace is the child it forks."""
    from pyrunc.trace import tracer  # noqa: F401 (before the fork: the child need not import)
    try:
        out_fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    except OSError as e:
        raise StepError("open trace file", path, e) from None
    ready_r, ready_w = os.pipe()
    done_r, done_w = os.pipe()
    try:
        child = os.fork()
    except OSError as e:
        for fd in (out_fd, ready_r, ready_w, done_r, done_w):
            os.close(fd)
        raise StepError("fork the tracer", None, e) from None
    if child == 0:
        try:
            os.setsid()  # a terminal's ^C or a session's SIGHUP is for the container, not for us
            if os.fork() == 0:
                _serve(pid, out_fd, ready_w, done_w, follow_root_children)
        finally:
            os._exit(0)
    os.close(out_fd)
    os.close(ready_w)
    os.close(done_w)
    os.waitpid(child, 0)
    try:
        answer = os.read(ready_r, 4096)  # one write of the tracer's (atomic, < PIPE_BUF), or EOF
    finally:
        os.close(ready_r)
    if answer != b"ok":
        os.close(done_r)
        raise TraceError(answer.decode(errors="replace") or "the tracer died before attaching")
    return Handle(done_r, path)


def _serve(pid, out_fd, ready_w, done_w, follow_root_children):
    """The detached process: it writes the file (trace/records.py) and forks the tracer, which
    seizes pid and hands it the records; it ends when the tracer has (done_w closes then)."""
    status = 1
    try:
        _detach_fds({out_fd, ready_w, done_w})
        import _signal as signal
        for sig in (signal.SIGHUP, signal.SIGINT, signal.SIGPIPE):
            signal.signal(sig, signal.SIG_IGN)
        records_r, records_w = os.pipe()
        try:
            import fcntl
            fcntl.fcntl(records_w, fcntl.F_SETPIPE_SZ, 1 << 20)  # room for the writer to fall behind
        except OSError:
            pass  # above /proc/sys/fs/pipe-max-size: the default 64 KiB works, with more waits
        tracer = os.fork()
        if tracer == 0:
            os.close(records_r)
            os.close(out_fd)
            os.close(done_w)
            _trace(pid, records_w, ready_w, follow_root_children)  # never returns
        os.close(records_w)
        os.close(ready_w)
        # The tracer holds the container at every stop; this process does not: it yields the CPU.
        os.nice(19)
        from pyrunc.trace.records import write_all
        with open(out_fd, "wb", buffering=1 << 16) as out:
            write_all(records_r, out)
        os.waitpid(tracer, 0)
        status = 0
    finally:
        os._exit(status)


def _trace(pid, records_w, ready_w, follow_root_children):
    status = 1
    try:
        from pyrunc.sys import ptrace as pt
        from pyrunc.trace.records import Sender
        from pyrunc.trace.tracer import OPTIONS, Tracer
        try:
            pt.seize(pid, OPTIONS)
        except OSError as e:
            os.write(ready_w, attach_error(pid, e).encode()[:4000])
            return
        os.write(ready_w, b"ok")
        os.close(ready_w)
        ready_w = None
        Tracer(pid, Sender(records_w), follow_root_children).run()
        status = 0
    except BaseException as e:
        if ready_w is not None:
            try:
                os.write(ready_w, f"tracer: {type(e).__name__}: {e}".encode()[:4000])
            except OSError:
                pass
    finally:
        os._exit(status)


def _detach_fds(keep):
    null = os.open("/dev/null", os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd, inheritable=False)
    os.close(null)
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd > 2 and fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass


def attach_error(pid, error):
    """What to tell the user when PTRACE_SEIZE fails."""
    import errno
    if error.errno == errno.ESRCH:
        return f"cannot trace process {pid}: it has exited"
    if error.errno != errno.EPERM:
        return f"cannot trace process {pid}: ptrace: {os.strerror(error.errno)}"
    tracer = _tracer_of(pid)
    if tracer:
        return f"cannot trace process {pid}: it is already traced by process {tracer}"
    try:
        with open("/proc/sys/kernel/yama/ptrace_scope") as f:
            scope = f.read().strip()
    except OSError:
        scope = None
    if scope and scope != "0":
        return (f"cannot trace process {pid}: ptrace not permitted (kernel.yama.ptrace_scope={scope}; "
                "tracing needs CAP_SYS_PTRACE, or scope 0)")
    return f"cannot trace process {pid}: ptrace not permitted (tracing needs CAP_SYS_PTRACE)"


def _tracer_of(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("TracerPid:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0
