"""Starting a container's init, in one of two ways (direct_clone_flags() chooses):

- direct: one clone3 makes init in its new namespaces (pid 1 of a new pid namespace) and, on
  cgroup2, in its cgroup; init joins the v1 cgroups itself, unshares a new cgroup namespace after
  that, and goes on as init. What crun does, and one fork of the runtime's interpreter (and the
  copy-on-write faults of a second child) less.
- through an intermediate: runtime -> intermediate -> init. The intermediate joins the cgroup (by
  itself: cgroups/selfjoin.py), enters the namespaces (setns by path, unshare for new ones) and
  forks init, so init is pid 1 of a new pid namespace and the runtime keeps its own namespaces.

The runtime never runs threads before this point (setns/unshare/clone3 need a single thread).
"""
import os

from pyrunc.errors import PyruncError, StepError
from pyrunc.process import sync
from pyrunc.sys import consts as c


class InitError(PyruncError):
    """A failure reported by the intermediate or init child, message as the child wrote it."""


def direct_clone_flags(namespaces, joiner):
    """The CLONE_NEW* flags for making init with one clone, or None when it needs the intermediate.

    A clone can only create namespaces, at the child's birth. The intermediate stays for:
    - a namespace joined by path: setns must come first (user before the others, a joined pid
      namespace only takes children of the caller), and the kernel cannot do it inside a clone;
    - a new user namespace: the runtime writes its id maps while the child waits, before the
      other namespaces are made (they must be owned by it);
    - a new time namespace: its offsets must be written before any process lives in it;
    - a cgroup the child cannot join by itself (systemd's first join starts the unit with the
      child's pid; no SelfJoin): the runtime moves it and the child waits for that.
    A new cgroup namespace is not among the flags: its root is the creator's cgroup at that
    moment, so init unshares it after joining its v1 cgroups (v2 it is born in).
    """
    if joiner is None or namespaces.join or {"user", "time"} & namespaces.new:
        return None
    from pyrunc.linux.namespaces import FLAGS
    flags = 0
    for kind in namespaces.new - {"cgroup"}:
        flags |= FLAGS[kind]
    return flags


def _failure_message(e):
    """What a child reports over the sync pipe for an exception that ends it."""
    if isinstance(e, PyruncError):
        return str(e)
    if isinstance(e, OSError):
        return str(StepError("start container init", None, e))
    return f"internal error: {type(e).__name__}: {e}"


def _direct_init(args, joiner):
    """The child of the one clone: finish what the clone could not do, then be init."""
    try:
        from pyrunc.sys.calls import prctl, unshare
        prctl(c.PR_SET_DUMPABLE, 0)  # init.main repeats it; nothing may ptrace us before either
        from pyrunc.process import init  # preloaded by the runtime before the clone
        joiner.join_child()
        if "cgroup" in args.namespaces.new:
            try:
                unshare(c.CLONE_NEWCGROUP)
            except OSError as e:
                raise StepError("unshare namespaces cgroup", None, e) from None
    except BaseException as e:
        try:
            sync.send(args.sync_fd, sync.ERROR, message=_failure_message(e))
        finally:
            os._exit(1)
    init.main(args)  # never returns


def _intermediate(args, write_fd, go_fd, joiner):
    status = 1
    try:
        from pyrunc.sys.calls import prctl
        prctl(c.PR_SET_DUMPABLE, 0)
        from pyrunc.process import init  # preloaded by the runtime before the fork
        if joiner is not None:
            joiner.join_child()
        if os.read(go_fd, 1) != b"1":
            os._exit(1)  # the runtime failed to place us in the cgroup and has reported it

        def wait_for_id_maps():
            sync.send(write_fd, sync.USERNS)
            if os.read(go_fd, 1) != b"2":
                os._exit(1)  # the runtime could not write the mappings and has reported it
            from pyrunc.linux.userns import become_root
            become_root()
        args.namespaces.enter(wait_for_id_maps)
        os.close(go_fd)
        pid = os.fork()
        if pid == 0:
            init.main(args)  # never returns
        sync.send(write_fd, sync.INIT_PID, pid=pid)
        status = 0
    except BaseException as e:
        sync.send(write_fd, sync.ERROR, message=_failure_message(e))
    finally:
        os._exit(status)


class _Started:
    """The runtime's side of a started child: init's pid when known, the intermediate's while it
    lives, the go pipe's write end (intermediate only)."""

    def __init__(self, init_pid=None, intermediate=None, go_write=None):
        self.init_pid, self.intermediate, self.go_write = init_pid, intermediate, go_write


def _clone_init(args, joiner, flags, read_fd):
    """Make init with one clone; None when the kernel cannot (nothing started)."""
    pid = joiner.clone(flags)
    if pid == 0:
        os.close(read_fd)
        _direct_init(args, joiner)
    if pid is not None:
        joiner.close()
        return _Started(init_pid=pid)
    return None


def _start_intermediate(args, joiner, read_fd):
    go_read, go_write = os.pipe()
    try:
        pid = joiner.fork() if joiner is not None else os.fork()
    except BaseException:
        os.close(go_read)
        os.close(go_write)
        raise
    if pid == 0:
        os.close(read_fd)
        os.close(go_write)
        _intermediate(args, args.sync_fd, go_read, joiner)
    os.close(go_read)
    try:
        if joiner is not None:
            joiner.join_parent(pid)
        elif args.cgroup is not None:
            args.cgroup.join(pid)
        try:
            os.write(go_write, b"1")
        except BrokenPipeError:
            pass  # the child failed (joining its cgroup) and has exited: its report is on the sync pipe
    except BaseException:
        os.close(go_write)
        _kill_and_reap(pid)
        raise
    return _Started(intermediate=pid, go_write=go_write)


def spawn(args):
    """Fork the container's init; return its pid once it reports ready. Raises InitError."""
    # Init's imports, before the fork: the children need not repeat them.
    from pyrunc.process import init
    init.preload(args.config)
    joiner = args.cgroup.self_join() if args.cgroup is not None else None
    read_fd, write_fd = os.pipe()
    args.sync_fd = write_fd
    try:
        started = None
        flags = direct_clone_flags(args.namespaces, joiner)
        if flags is not None:
            started = _clone_init(args, joiner, flags, read_fd)
        if started is None:
            started = _start_intermediate(args, joiner, read_fd)
    except BaseException:
        os.close(read_fd)
        os.close(write_fd)
        if joiner is not None:
            joiner.close()
        raise
    os.close(write_fd)
    receiver = sync.Receiver(read_fd)
    init_pid, ready, hooks_pending, listener_fd = started.init_pid, False, False, None
    try:
        if init_pid is not None and args.on_init_pid is not None:
            args.on_init_pid(init_pid)
        # Two writers may share the pipe (intermediate and init), so "ready" may overtake "init_pid".
        while init_pid is None or not ready:
            message = receiver.next()
            if message is None:
                raise InitError(_exited_before_ready(args.cgroup))
            if message["type"] == sync.ERROR:
                raise InitError(message["message"])
            if message["type"] == sync.INIT_PID:
                init_pid = message["pid"]
                os.waitpid(started.intermediate, 0)
                started.intermediate = None
                if args.on_init_pid is not None:
                    args.on_init_pid(init_pid)
            elif message["type"] == sync.READY:
                ready = True
            elif message["type"] == sync.USERNS:
                from pyrunc.linux.userns import write_mappings
                write_mappings(started.intermediate, args.config.get("linux") or {})
                os.write(started.go_write, b"2")
            elif message["type"] == sync.SECCOMP_FD:
                listener_fd = message["listener_fd"]  # init waits until the agent has it
            elif message["type"] == sync.HOOKS:
                hooks_pending = True
            if listener_fd is not None and init_pid is not None:
                args.on_seccomp_listener(init_pid, listener_fd)
                listener_fd = None
            if hooks_pending and init_pid is not None:
                hooks_pending = False
                args.run_runtime_hooks(init_pid)
        return init_pid
    except BaseException:
        if init_pid is not None:
            _kill_and_reap(init_pid)
        raise
    finally:
        os.close(read_fd)
        if started.go_write is not None:
            os.close(started.go_write)
        if started.intermediate is not None:
            os.waitpid(started.intermediate, 0)


def _exited_before_ready(cgroup):
    """Init ended without a word: runc's words when the OOM killer did it (a memory limit below
    what starting a container takes), else what we know."""
    if cgroup is not None:
        from pyrunc.cgroups.stats import oom_kills
        try:
            if oom_kills(cgroup):
                return "container init was OOM-killed (memory limit too low?)"
        except Exception:  # noqa: BLE001 - only a better message was at stake
            pass
    return "container init exited before it was ready"


def _kill_and_reap(pid):
    import _signal as signal  # the signal package imports enum
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    try:
        os.waitpid(pid, 0)  # only possible when we are its subreaper (run)
    except ChildProcessError:
        from pyrunc.state.status import start_time
        import time
        for _ in range(2000):
            if start_time(pid) is None:
                break
            time.sleep(0.001)
