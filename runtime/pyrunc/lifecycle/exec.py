"""exec: run another process in a container's namespaces and cgroup.

runtime -> intermediate (non-dumpable; joins the cgroup by itself, cgroups/selfjoin.py, then
every namespace of the container's init) -> the process (forked after setns, so it is in the
container's pid namespace), which sets itself up (process/setns_init.py) and execs.
"""
import os

from pyrunc.errors import InvalidState, PyruncError, StepError, UsageError
from pyrunc.lifecycle.container import cgroup_of, load
from pyrunc.process import sync
from pyrunc.state import status as st

# Join order: user first (it decides what the others allow), mount last (it changes the root).
_NS = (("user", "user"), ("ipc", "ipc"), ("uts", "uts"), ("net", "network"), ("pid", "pid"),
       ("cgroup", "cgroup"), ("time", "time"), ("mnt", "mount"))


class ExecOptions:
    def __init__(self, process=None, args=(), tty=False, console_socket=None, cwd=None, env=(), user=None,
                 additional_gids=(), caps=(), no_new_privs=False, apparmor=None, process_label=None,
                 detach=False, pid_file=None, preserve_fds=0, cgroup=(), ignore_paused=False, pidfd_socket=None,
                 trace=None):
        self.process, self.args, self.tty, self.console_socket = process, list(args), tty, console_socket
        self.cwd, self.env, self.user, self.additional_gids = cwd, list(env), user, list(additional_gids)
        self.caps, self.no_new_privs, self.apparmor = list(caps), no_new_privs, apparmor
        self.process_label, self.detach = process_label, detach
        self.pid_file = os.path.abspath(pid_file) if pid_file else None
        self.preserve_fds, self.cgroup, self.ignore_paused = preserve_fds, list(cgroup), ignore_paused
        self.pidfd_socket = pidfd_socket
        self.trace = os.path.abspath(trace) if trace else None  # a JSON-lines file (runtime/pyrunc/trace/)


def build_process(config, opts):
    """The process to run: --process FILE as it is, else the config's process with runc's
    command-line overrides (runc utils_linux.go getProcess).

    A --process file is validated against the schema. The overridden process is not: its base was
    validated at create, and the command line can only add strings and booleans there, plus ids
    that are range-checked here (loading the process validator is ~1 ms of every exec)."""
    if opts.process:
        from pyrunc.spec.load import parse_json, read_document, validate_process
        data = read_document(opts.process)
        process = parse_json(data, opts.process)
        if not isinstance(process, dict):
            raise StepError("parse process", opts.process, "not a JSON object")
        validate_process(process, opts.process, raw=data)
        return process
    if not opts.args:
        raise UsageError("exec: a command is required unless --process is given")
    process = _json_copy(config.get("process") or {})
    process["args"] = opts.args
    if opts.cwd:
        process["cwd"] = opts.cwd
    if opts.apparmor:
        process["apparmorProfile"] = opts.apparmor
    if opts.process_label:
        process["selinuxLabel"] = opts.process_label
    if opts.caps:
        caps = process.setdefault("capabilities", {})
        for cap in opts.caps:
            for kind in ("bounding", "effective", "permitted"):
                caps.setdefault(kind, []).append(cap)
            # Ambient needs inheritable: only when the config has that set, as runc.
            if caps.get("inheritable") is not None:
                caps.setdefault("ambient", []).append(cap)
    process["env"] = list(process.get("env") or ()) + opts.env
    process["terminal"] = bool(opts.tty)
    if opts.no_new_privs:
        process["noNewPrivileges"] = True
    if opts.user:
        uid, _, gid = opts.user.partition(":")
        try:
            user = process.setdefault("user", {})
            user["uid"] = int(uid)
            user["gid"] = int(gid) if gid else 0
        except ValueError:
            raise UsageError(f"parsing {opts.user} as uid[:gid]: not a number") from None
        _check_id("--user", user["uid"])
        _check_id("--user", user["gid"])
    if opts.additional_gids:
        try:
            gids = [int(g) for g in opts.additional_gids]
        except ValueError:
            raise UsageError(f"invalid additional-gids value {opts.additional_gids}") from None
        for gid in gids:
            _check_id("--additional-gids", gid)
        user = process.setdefault("user", {"uid": 0, "gid": 0})
        user["additionalGids"] = list(user.get("additionalGids") or ()) + gids
    return process


def _check_id(flag, value):
    if not 0 <= value <= 0xFFFFFFFF:
        raise UsageError(f"{flag}: {value} is not a valid id (0 to 4294967295)")


def _json_copy(value):
    """A deep copy of JSON data; the copy module (and weakref under it) costs ~1.5 ms to import."""
    if isinstance(value, dict):
        return {k: _json_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_copy(v) for v in value]
    return value


def _open_namespaces(pid):
    """fds of init's namespaces that differ from ours (setns into our own user ns is EINVAL)."""
    fds = []
    try:
        for name, kind in _NS:
            path = f"/proc/{pid}/ns/{name}"
            try:
                if os.stat(path).st_ino == os.stat(f"/proc/self/ns/{name}").st_ino:
                    if name == "mnt":
                        # No mount namespace of its own: init is chrooted in ours, and so is the
                        # process (runc's would run on the host's root).
                        path = f"/proc/{pid}/root"
                        fds.append(("root", path, os.open(path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)))
                    continue
                fds.append((kind, path, os.open(path, os.O_RDONLY | os.O_CLOEXEC)))
            except FileNotFoundError:
                continue  # a kernel without this namespace kind
    except OSError as e:
        for _, _, fd in fds:
            os.close(fd)
        raise StepError("open namespace", path, e) from None
    return fds


def _sub_cgroups(cgroup, specs):
    """--cgroup [controller:]path: existing sub-cgroups of the container's, per hierarchy, as
    (version, dir) pairs."""
    if not specs:
        return cgroup.join_targets()
    from pyrunc.cgroups.manager import clean_path
    wanted = {}
    for spec in specs:
        controllers, sep, path = spec.rpartition(":")
        path = clean_path(path).lstrip("/")
        if not path or path.startswith(".."):
            raise UsageError(f"invalid --cgroup argument: {spec}")
        for key in (controllers.split(",") if sep else [None]):
            wanted[key] = path
    dirs = []
    for h in cgroup.hierarchies:
        base = cgroup.paths[h.keys[0]]
        sub = next((wanted[k] for k in h.keys if k in wanted), wanted.get(None))
        if sub is None and None not in wanted and h.version != "v1":
            sub = wanted.get("")
        target = os.path.join(base, sub) if sub else base
        if not os.path.isdir(target):
            raise StepError("join sub-cgroup", target, "no such cgroup (--cgroup needs an existing one)")
        dirs.append((h.version, target))
    return list(dict.fromkeys(dirs))


def _intermediate(args, go_fd, joiner):
    status = 1
    try:
        from pyrunc.sys import consts as c
        from pyrunc.sys.calls import chroot, prctl, setns
        # Non-dumpable before the first setns, inherited by the process until its execve: nothing
        # in the container may open /proc/<pid>/exe (the host's python) or ptrace us.
        prctl(c.PR_SET_DUMPABLE, 0)
        from pyrunc.process import setns_init  # preloaded by the runtime before the fork
        if joiner is not None:
            joiner.join_child()  # before setns: the cgroup files are the host's
        if os.read(go_fd, 1) != b"1":
            os._exit(1)
        for kind, path, fd in args.ns_fds:
            try:
                if kind == "root":
                    os.fchdir(fd)
                    chroot(".")
                    os.chdir("/")
                else:
                    setns(fd, 0, path)
            except OSError as e:
                raise StepError(f"join {kind} namespace" if kind != "root" else "chroot to", path, e) from None
            os.close(fd)
        # The container's root is ours now: nothing may be imported from a file any more.
        from pyrunc.process import sealed_imports
        sealed_imports.seal()
        pid = os.fork()
        if pid == 0:
            setns_init.main(args)
        sync.send(args.sync_fd, sync.INIT_PID, pid=pid)
        if args.pidfd_socket is not None:
            # From here, not the runtime: we are the process's parent, so its pid cannot be reaped
            # and reused before pidfd_open (the runtime reaps nothing when detached).
            from pyrunc.process import console
            console.send_pidfd(args.pidfd_socket, pid, "setns")
        status = 0
    except PyruncError as e:
        sync.send(args.sync_fd, sync.ERROR, message=str(e))
    except BaseException as e:
        sync.send(args.sync_fd, sync.ERROR, message=f"internal error: {type(e).__name__}: {e}")
    finally:
        os._exit(status)


def exec_process(ctx, container_id, opts):
    store = ctx.store()
    state, status = load(store, container_id)
    if status == st.STOPPED:
        raise InvalidState("cannot exec in a stopped container", status)
    if status == st.CREATING:
        raise InvalidState("cannot exec in a container that is still being created", status)
    if status == st.PAUSED and not opts.ignore_paused:
        raise InvalidState("cannot exec in a paused container (use --ignore-paused to override)", status)
    config = state.get("config") or {}
    process = build_process(config, opts)
    if process.get("terminal") and opts.detach and not opts.console_socket:
        raise UsageError("cannot allocate tty if pyrunc will detach without setting console socket")
    if opts.console_socket and not process.get("terminal"):
        raise UsageError("cannot use console socket if pyrunc will not detach or allocate tty")
    if process.get("terminal") and not opts.detach and not opts.console_socket:
        from pyrunc.process.ttyproxy import require_host_terminal
        require_host_terminal()
    from pyrunc.process.fds import check_preserved, listen_fds
    listen = listen_fds()  # LISTEN_FDS/LISTEN_PID are set by the process itself (setns_init)
    preserve = listen + opts.preserve_fds
    check_preserved(preserve)
    cgroup = cgroup_of(state)
    cgroup_targets = _sub_cgroups(cgroup, opts.cgroup) if cgroup is not None else []

    from pyrunc.process.setns_init import ExecArgs
    own_console = None
    child_console = None
    pidfd_socket = None
    ns_fds = _open_namespaces(state["pid"])
    read_fd = write_fd = go_read = go_write = None
    pid = joiner = args = tracer = None
    try:
        if not st.is_alive(state):  # the namespaces we opened may be a recycled pid's
            raise InvalidState("cannot exec in a stopped container", st.STOPPED)
        if process.get("terminal"):
            from pyrunc.process import console
            if opts.console_socket:
                child_console = console.connect(opts.console_socket)
            else:
                own_console, child_console = console.socketpair()
        if opts.pidfd_socket:
            from pyrunc.process import console
            pidfd_socket = console.connect(opts.pidfd_socket, what="pidfd socket")
        if not opts.detach:
            # The process is our grandchild: as subreaper we inherit it when the intermediate exits.
            from pyrunc.sys import consts as c
            from pyrunc.sys.calls import prctl
            prctl(c.PR_SET_CHILD_SUBREAPER, 1)
        read_fd, write_fd = os.pipe()
        go_read, go_write = os.pipe()
        from pyrunc.linux import lsm
        lsm.check({"process": process})  # a label the host cannot apply fails here, before any fork
        args = ExecArgs(container_id, config, process, ns_fds, child_console, preserve, write_fd,
                        listen_fds=listen)
        args.pidfd_socket = pidfd_socket
        on_listener = None
        if args.seccomp_ack is not None:
            from pyrunc.linux.seccomp import notify

            def on_listener(proc_pid, fd):  # as runc's exec: state "running", pid the container's init
                notify.send_listener(config["linux"]["seccomp"], state, "running", state["pid"], proc_pid, fd,
                                     args.seccomp_ack[1])
        # The process's imports, before the fork: the children need not repeat them.
        from pyrunc.process import setns_init
        setns_init.preload(process)
        if cgroup_targets:
            from pyrunc.cgroups.selfjoin import SelfJoin
            joiner = SelfJoin(cgroup_targets)
        pid = joiner.fork() if joiner is not None else os.fork()
        if pid == 0:
            os.close(read_fd)
            os.close(go_write)
            _intermediate(args, go_read, joiner)
        os.close(write_fd)
        write_fd = None
        os.close(go_read)
        go_read = None
        for _, _, fd in ns_fds:
            os.close(fd)
        ns_fds = []
        if child_console is not None:
            os.close(child_console)
            child_console = None
        if joiner is not None:
            joiner.join_parent(pid)
        if opts.trace:  # the intermediate waits for "go": its child, the process, is traced from birth
            from pyrunc.trace.launch import start as start_tracer
            tracer = start_tracer(pid, opts.trace, follow_root_children=True)
        try:
            os.write(go_write, b"1")
        except BrokenPipeError:
            pass  # the intermediate failed (joining its cgroup) and has exited: its report is on the sync pipe
        os.close(go_write)
        go_write = None
        intermediate, pid = pid, None
        proc_pid = _wait_started(read_fd, intermediate, on_listener)
    except BaseException:
        if pid is not None:
            _kill(pid)
        if joiner is not None:
            joiner.close()
        if own_console is not None:
            os.close(own_console)
        raise
    finally:
        for fd in (read_fd, write_fd, go_read, go_write, child_console, pidfd_socket,
                   *(args.seccomp_ack if args is not None and args.seccomp_ack else ())):
            if fd is not None:
                os.close(fd)
        for _, _, fd in ns_fds:
            os.close(fd)
    master = None
    if own_console is not None:
        from pyrunc.process import console
        master = console.receive_master(own_console)
        os.close(own_console)
    if opts.pid_file:
        from pyrunc.state.pidfile import write_pid_file
        try:
            write_pid_file(opts.pid_file, proc_pid)
        except BaseException:
            _kill(proc_pid)
            if master is not None:
                os.close(master)
            raise
    if opts.detach:
        return 0
    from pyrunc.lifecycle.foreground import wait_foreground
    status = wait_foreground(proc_pid, master)
    if tracer is not None:
        tracer.wait()  # the trace file is complete when exec returns
    return status


def _wait_started(read_fd, intermediate, on_listener=None):
    """The process's pid once it has exec'd (the sync pipe is CLOEXEC: EOF means execve worked).
    on_listener(pid, fd): the process names its seccomp listener fd and waits for the answer; its
    pid comes from the intermediate, possibly after (two writers share the pipe)."""
    receiver = sync.Receiver(read_fd)
    proc_pid = listener_fd = None
    try:
        while True:
            message = receiver.next()
            if message is None:
                break
            if message["type"] == sync.ERROR:
                raise PyruncError(message["message"])
            if message["type"] == sync.INIT_PID:
                proc_pid = message["pid"]
            elif message["type"] == sync.SECCOMP_FD and on_listener is not None:
                listener_fd = message["listener_fd"]
            if listener_fd is not None and proc_pid is not None:
                on_listener(proc_pid, listener_fd)
                listener_fd = None
        if proc_pid is None:
            raise PyruncError("exec: the intermediate process died before starting the process")
        return proc_pid
    except BaseException:
        if proc_pid is not None:
            _kill(proc_pid)
        raise
    finally:
        os.waitpid(intermediate, 0)


def _kill(pid):
    try:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
    except OSError:
        pass
