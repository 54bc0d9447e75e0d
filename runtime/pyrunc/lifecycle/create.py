"""create: build the container from config.json, leave init waiting on exec.fifo.

Either everything is built and state.json written, or nothing is left: every step that creates
something registers its undo before the next step runs.
"""
import os
import time

from pyrunc.errors import PyruncError
from pyrunc.linux.namespaces import has_mount_namespace
from pyrunc.log import logger
from pyrunc.state.store import EXEC_FIFO, validate_id


class CreateOptions:
    def __init__(self, bundle=".", pid_file=None, console_socket=None, no_pivot=False, no_new_keyring=False,
                 preserve_fds=0, detach=True, pidfd_socket=None, trace=None):
        self.bundle = os.path.abspath(bundle)
        self.pid_file = os.path.abspath(pid_file) if pid_file else None
        self.console_socket = console_socket
        self.no_pivot, self.no_new_keyring = no_pivot, no_new_keyring
        self.preserve_fds, self.detach = preserve_fds, detach
        self.pidfd_socket = pidfd_socket
        self.trace = os.path.abspath(trace) if trace else None  # a JSON-lines file (runtime/pyrunc/trace/)
        self.tracer = None  # once attached: trace.launch.Handle


def _rfc3339_nano(ns):
    seconds, nanos = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{nanos:09d}Z"


def _check_unsupported(config, opts):
    process = config.get("process") or {}
    if process.get("terminal") and opts.detach and not opts.console_socket:
        raise PyruncError("cannot allocate tty if pyrunc will detach without setting console socket")
    if opts.console_socket and not (process.get("terminal") and opts.detach):
        raise PyruncError("cannot use console socket if pyrunc will not detach or allocate tty")
    if process.get("terminal") and not opts.detach:
        from pyrunc.process.ttyproxy import require_host_terminal
        require_host_terminal()
    linux = config.get("linux") or {}
    if not has_mount_namespace(config) and (linux.get("maskedPaths") or linux.get("readonlyPaths")):
        raise PyruncError("unable to restrict sys entries without a private MNT namespace")  # runc's words
    from pyrunc.linux import lsm
    lsm.check(config)


def create(ctx, container_id, opts):
    from pyrunc.spec.load import load_config

    if os.geteuid() != 0:
        # runc's rootless mode (an unprivileged caller: cgroup permission errors ignored, id maps
        # written while the child is briefly dumpable, state under $XDG_RUNTIME_DIR) is not built:
        # say so, instead of failing at the first root-only step with EACCES on some path.
        raise PyruncError(f"rootless containers are not supported yet: create needs root "
                          f"(running as uid {os.geteuid()})")
    validate_id(container_id)
    store = ctx.store()
    if store.exists(container_id):
        from pyrunc.errors import ContainerExists
        raise ContainerExists(container_id)
    config = load_config(opts.bundle)
    _check_unsupported(config, opts)
    from pyrunc.process import create_extras
    init_config, preserve_fds = create_extras.init_config(config, opts.preserve_fds)

    from pyrunc.spec.rootfs import rootfs_path
    rootfs = rootfs_path(config["root"]["path"], opts.bundle)

    from pyrunc.linux.namespaces import NamespacePlan
    from pyrunc.process.init import InitArgs
    from pyrunc.process.spawn import spawn

    linux = config.get("linux") or {}
    namespaces = NamespacePlan(linux.get("namespaces"))
    directory = store.create(container_id)
    cgroup = None
    fifo_fd = None
    state = None
    extras = None
    try:
        fifo = os.path.join(directory, EXEC_FIFO)
        os.mkfifo(fifo, 0o622)
        os.chmod(fifo, 0o622)
        from pyrunc.cgroups.manager import open_manager
        cgroup = open_manager(linux.get("cgroupsPath"), container_id, systemd=ctx.systemd_cgroup)
        state = {
            "ociVersion": config.get("ociVersion", ""),
            "id": container_id,
            "pid": 0,
            "init_start_time": None,
            "bundle": opts.bundle,
            "rootfs": rootfs,
            "created": _rfc3339_nano(time.time_ns()),
            "annotations": config.get("annotations") or {},
            "cgroup": cgroup.to_state(),
            "pid_ns_new": "pid" in namespaces.new,
            "config": config,
        }
        # Before anything is made on the host (the cgroup dirs it plans to make are in it):
        # whatever create leaves if it is killed from here on, `delete --force` finds. "creating"
        # until the end (state/status.py); no config yet: nothing has run that poststop undoes.
        store.save(container_id, dict(state, config=None, creating=True))
        cgroup.create()
        if cgroup.foreign:
            logger.warning(f"container's cgroup is not empty: {len(cgroup.foreign)} process(es) found")
        # The dirs made are now known to be ours: whatever is in them from here on (init, before
        # its pid is recorded) is the container's, for `delete --force` to kill.
        state["cgroup"] = cgroup.to_state()
        store.save(container_id, dict(state, config=None, creating=True))
        from pyrunc.cgroups.apply import apply
        apply(cgroup, linux.get("resources"), linux.get("devices"))
        fifo_fd = os.open(fifo, os.O_PATH | os.O_CLOEXEC)
        args = InitArgs(init_config, opts.bundle, rootfs, namespaces, cgroup, fifo_fd, None, opts.no_pivot,
                        preserve_fds, None if opts.no_new_keyring else f"_ses.{container_id}")
        extras = create_extras.Extras(container_id, config, opts, directory, args)
        from pyrunc.linux import idmap
        if idmap.needed(args.config):
            # Mount indexes must match the list init walks (create_extras may have appended one).
            args.idmapped = idmap.prepare(args.config, opts.bundle)

        def record_init(init_pid):
            # While init builds the container (the runtime would only wait): init's identity goes
            # into state.json at once (still "creating"), and the final state is written aside,
            # put in place once init is ready, so a reader never sees "created" earlier.
            from pyrunc.lifecycle.container import pid_namespace
            from pyrunc.state.status import start_time
            state.update(pid=init_pid, init_start_time=start_time(init_pid), cgroup=cgroup.to_state())
            if state["pid_ns_new"]:
                state["pid_ns"] = pid_namespace(init_pid)
            from pyrunc import fastjson
            final = fastjson.dumps(state).encode()
            store.save(container_id, final[:-1] + b', "creating": true}')  # one key more: encoded once
            store.stage(container_id, final)
        args.on_init_pid = record_init
        if linux.get("seccomp"):
            from pyrunc.linux.seccomp import notify
            if notify.wanted(linux["seccomp"]):
                args.seccomp_ack = os.pipe()

                def to_agent(init_pid, fd):  # runc's create: state "creating", init's listener
                    notify.send_listener(linux["seccomp"], state, "creating", init_pid, init_pid, fd,
                                         args.seccomp_ack[1])
                args.on_seccomp_listener = to_agent
        try:
            pid = spawn(args)
        finally:
            idmap.close_all(args.idmapped)
            for fd in args.seccomp_ack or ():
                os.close(fd)
        extras.after_spawn(pid)
        if opts.trace:  # init waits on exec.fifo: attached before the container's program can run
            from pyrunc.trace.launch import start as start_tracer
            opts.tracer = start_tracer(pid, opts.trace)
        store.commit(container_id)
        if opts.pid_file:
            from pyrunc.state.pidfile import write_pid_file
            write_pid_file(opts.pid_file, pid)
        return state
    except BaseException:
        _undo(store, container_id, cgroup, state)
        if not has_mount_namespace(config):
            from pyrunc.linux.rootfs import release_shared_mounts
            release_shared_mounts(rootfs)
        create_extras.after_failure(config, container_id, opts)
        raise
    finally:
        if fifo_fd is not None:
            os.close(fifo_fd)
        if extras is not None:
            extras.close()


def _undo(store, container_id, cgroup, state):
    """Remove what a failed create made so far: init (if it was spawned) and the container's other
    processes, the cgroup dirs it made, the state dir. Never a process that is not the
    container's: in a cgroup it did not make, only those lifecycle/container.py calls its own."""
    if cgroup is not None:
        from pyrunc.lifecycle.container import kill_everything
        try:
            kill_everything(state, cgroup)
            cgroup.destroy()
        except PyruncError as e:
            logger.warning(f"cleanup after failed create: {e}")
    store.remove(container_id)
