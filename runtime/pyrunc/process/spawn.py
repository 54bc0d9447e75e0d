"""Starting a container's init: runtime -> intermediate -> init.

The intermediate child joins the cgroup (by itself: cgroups/selfjoin.py), enters the namespaces (setns by path, unshare for new
ones) and forks init, so init is pid 1 of a new pid namespace and the runtime keeps its own
namespaces. The runtime never runs threads before this point (setns/unshare need a single thread).
"""
import os

from pyrunc.errors import PyruncError, StepError
from pyrunc.process import sync


class InitError(PyruncError):
    """A failure reported by the intermediate or init child, message as the child wrote it."""


def _intermediate(args, write_fd, go_fd, joiner):
    status = 1
    try:
        from pyrunc.sys import consts as c
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
    except PyruncError as e:
        sync.send(write_fd, sync.ERROR, message=str(e))
    except OSError as e:
        sync.send(write_fd, sync.ERROR, message=str(StepError("start container init", None, e)))
    except BaseException as e:
        sync.send(write_fd, sync.ERROR, message=f"internal error: {type(e).__name__}: {e}")
    finally:
        os._exit(status)


def spawn(args):
    """Fork the container's init; return its pid once it reports ready. Raises InitError."""
    # Init's imports, before the fork: the children need not repeat them.
    from pyrunc.process import init
    init.preload(args.config)
    joiner = args.cgroup.self_join() if args.cgroup is not None else None
    read_fd, write_fd = os.pipe()
    go_read, go_write = os.pipe()
    args.sync_fd = write_fd
    try:
        pid = joiner.fork() if joiner is not None else os.fork()
    except BaseException:
        for fd in (read_fd, write_fd, go_read, go_write):
            os.close(fd)
        if joiner is not None:
            joiner.close()
        raise
    if pid == 0:
        os.close(read_fd)
        os.close(go_write)
        _intermediate(args, write_fd, go_read, joiner)
    os.close(write_fd)
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
        os.close(read_fd)
        os.close(go_write)
        _kill_and_reap(pid)
        raise
    receiver = sync.Receiver(read_fd)
    init_pid, ready, hooks_pending = None, False, False
    try:
        # Two writers share the pipe (intermediate and init), so "ready" may overtake "init_pid".
        while init_pid is None or not ready:
            message = receiver.next()
            if message is None:
                raise InitError("container init exited before it was ready")
            if message["type"] == sync.ERROR:
                raise InitError(message["message"])
            if message["type"] == sync.INIT_PID:
                init_pid = message["pid"]
                os.waitpid(pid, 0)
                pid = None
            elif message["type"] == sync.READY:
                ready = True
            elif message["type"] == sync.USERNS:
                from pyrunc.linux.userns import write_mappings
                write_mappings(pid, args.config.get("linux") or {})
                os.write(go_write, b"2")
            elif message["type"] == sync.SECCOMP_FD:
                args.seccomp_listener_fd = message["listener_fd"]  # fetched by create while init waits
            elif message["type"] == sync.HOOKS:
                hooks_pending = True
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
        os.close(go_write)
        if pid is not None:
            os.waitpid(pid, 0)


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
