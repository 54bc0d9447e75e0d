"""create: build the container from config.json, leave init waiting on exec.fifo.

Either everything is built and state.json written, or nothing is left: every step that creates
something registers its undo before the next step runs.
"""
import os
import time

from pyrunc.errors import PyruncError
from pyrunc.log import logger
from pyrunc.state.store import EXEC_FIFO, validate_id


class CreateOptions:
    def __init__(self, bundle=".", pid_file=None, console_socket=None, no_pivot=False, no_new_keyring=False,
                 preserve_fds=0, detach=True, pidfd_socket=None):
        self.bundle = os.path.abspath(bundle)
        self.pid_file = os.path.abspath(pid_file) if pid_file else None
        self.console_socket = console_socket
        self.no_pivot, self.no_new_keyring = no_pivot, no_new_keyring
        self.preserve_fds, self.detach = preserve_fds, detach
        self.pidfd_socket = pidfd_socket


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
    if not any(ns.get("type") == "mount" for ns in linux.get("namespaces") or ()):
        raise PyruncError("linux.namespaces: a mount namespace is required (mounts would land on the host)")
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
    pid = None
    extras = None
    try:
        fifo = os.path.join(directory, EXEC_FIFO)
        os.mkfifo(fifo, 0o622)
        os.chmod(fifo, 0o622)
        from pyrunc.cgroups.manager import open_manager
        cgroup = open_manager(linux.get("cgroupsPath"), container_id, systemd=ctx.systemd_cgroup)
        cgroup.create()
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
        states = []

        def stage_state(init_pid):
            # While init builds the container (the runtime would only wait): state.json's content,
            # written aside, is put in place once init is ready, so a reader never sees it earlier.
            from pyrunc.state.status import start_time
            states.append({
                "ociVersion": config.get("ociVersion", ""),
                "id": container_id,
                "pid": init_pid,
                "init_start_time": start_time(init_pid),
                "bundle": opts.bundle,
                "rootfs": rootfs,
                "created": _rfc3339_nano(time.time_ns()),
                "annotations": config.get("annotations") or {},
                "cgroup": cgroup.to_state(),
                "private_pid_ns": namespaces.private("pid"),
                "config": config,
            })
            store.stage(container_id, states[0])
        args.on_init_pid = stage_state
        try:
            pid = spawn(args)
        finally:
            idmap.close_all(args.idmapped)
        extras.after_spawn(pid)
        state = states[0]
        if args.seccomp_listener_fd is not None:
            from pyrunc.linux.seccomp.notify import send_listener
            send_listener(linux["seccomp"], state, pid, args.seccomp_listener_fd)
        store.commit(container_id)
        if opts.pid_file:
            from pyrunc.state.pidfile import write_pid_file
            write_pid_file(opts.pid_file, pid)
        return state
    except BaseException:
        _undo(store, container_id, cgroup, pid)
        create_extras.after_failure(config, container_id, opts)
        raise
    finally:
        if fifo_fd is not None:
            os.close(fifo_fd)
        if extras is not None:
            extras.close()


def _undo(store, container_id, cgroup, pid):
    """Remove what a failed create made so far: init (if it was spawned), the cgroup, the state dir."""
    if pid is not None:
        from pyrunc.lifecycle.container import kill_everything
        from pyrunc.state.status import start_time
        kill_everything({"pid": pid, "init_start_time": start_time(pid),
                         "cgroup": cgroup.to_state() if cgroup else None})
    if cgroup is not None:
        try:
            if cgroup.pids():
                import _signal as signal
                cgroup.kill_all(signal.SIGKILL)
            cgroup.destroy()
        except PyruncError as e:
            logger.warning(f"cleanup after failed create: {e}")
    store.remove(container_id)
