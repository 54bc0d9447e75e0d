"""What create adds around spawning init: hooks, the console, socket activation, sd_notify.

Kept apart from lifecycle/create.py so that file stays the plain orchestration of building a
container; everything here is set up before spawn and finished (or closed) right after it.
"""
import os

from pyrunc.process import hooks
from pyrunc.process.fds import check_preserved, listen_fds

NOTIFY_DIR = "notify"
NOTIFY_IN_CONTAINER = "/run/notify/notify.sock"


def init_config(config, preserve_fds):
    """The config init works from (config itself unless env or mounts are added) and how many fds
    it keeps: LISTEN_FDS (socket activation, runc's order: first) + --preserve-fds."""
    listen = listen_fds()
    notify = os.environ.get("NOTIFY_SOCKET")
    check_preserved(listen + preserve_fds)
    if not listen and not notify:
        return config, preserve_fds
    import copy  # only here: copy pulls in weakref and types, ~1 ms on every create otherwise
    config = copy.deepcopy(config)
    process = config.setdefault("process", {})
    env = process.setdefault("env", [])
    if listen:
        env += [f"LISTEN_FDS={listen}", "LISTEN_PID=1"]
    if notify:
        env.append(f"NOTIFY_SOCKET={NOTIFY_IN_CONTAINER}")
    return config, listen + preserve_fds


class Extras:
    def __init__(self, container_id, config, opts, directory, args):
        self.opts = opts
        self.own_console = None
        self.fds = []
        args.hook_state = {"ociVersion": config.get("ociVersion", ""), "id": container_id,
                           "bundle": opts.bundle, "annotations": config.get("annotations") or {}}
        if os.environ.get("NOTIFY_SOCKET"):
            # runc's notify socket: a dir in the state dir, bound read-only into the container; `start`
            # listens there and forwards READY to the caller's $NOTIFY_SOCKET.
            notify_dir = os.path.join(directory, NOTIFY_DIR)
            os.mkdir(notify_dir, 0o755)
            args.config.setdefault("mounts", []).append({
                "destination": os.path.dirname(NOTIFY_IN_CONTAINER), "type": "bind", "source": notify_dir,
                "options": ["bind", "nosuid", "noexec", "nodev", "ro"]})
        if hooks.entries(config, "prestart") or hooks.entries(config, "createRuntime"):
            read_fd, write_fd = os.pipe()
            self.fds += [read_fd, write_fd]
            args.hooks_fds = (read_fd, write_fd)

            def run_runtime_hooks(init_pid):
                state = hooks.hook_state(args.hook_state, "creating", init_pid)
                hooks.run_all(config, "prestart", state)
                hooks.run_all(config, "createRuntime", state)
                os.write(write_fd, b"1")
            args.run_runtime_hooks = run_runtime_hooks
        if (config.get("process") or {}).get("terminal"):
            from pyrunc.process import console
            if opts.console_socket:
                child = console.connect(opts.console_socket)
            else:
                self.own_console, child = console.socketpair()
                self.fds.append(self.own_console)
            self.fds.append(child)
            args.console_fd = child
        self.child_console = getattr(args, "console_fd", None)
        self.pidfd_socket = None
        if getattr(opts, "pidfd_socket", None):
            from pyrunc.process import console
            self.pidfd_socket = console.connect(opts.pidfd_socket, what="pidfd socket")
            self.fds.append(self.pidfd_socket)

    def after_spawn(self, pid):
        """Init is ready: its copy of the console socket has done its job."""
        self.send_pidfd(pid)
        if self.own_console is not None:
            from pyrunc.process import console
            self.opts.console_master = console.receive_master(self.own_console)

    def send_pidfd(self, pid):
        """--pidfd-socket: a pidfd of init, sent as runc 1.2 does (one fd, payload "standard").
        Taken now, while init is held on exec.fifo and cannot have exited and been reaped."""
        if self.pidfd_socket is not None:
            from pyrunc.process import console
            console.send_pidfd(self.pidfd_socket, pid, "standard")

    def close(self):
        for fd in self.fds:
            try:
                os.close(fd)
            except OSError:
                pass
        self.fds = []


def after_failure(config, container_id, opts):
    """create failed and its undo is done: close a pty master we received, then run the poststop
    hooks, as runc's destroy does and as the runtime-spec's lifecycle says (a failing create hook
    continues the lifecycle at delete, whose last step is poststop): they undo what prestart and
    createRuntime hooks set up. Failures are warnings; the create error is what the caller sees."""
    master = getattr(opts, "console_master", None)
    if master is not None:
        opts.console_master = None
        os.close(master)
    if hooks.entries(config, "poststop"):
        from pyrunc.log import logger
        state = {"ociVersion": config.get("ociVersion", ""), "id": container_id, "bundle": opts.bundle,
                 "annotations": config.get("annotations") or {}}
        try:
            hooks.run_all(config, "poststop", hooks.hook_state(state, "stopped", 0), warn=logger.warning)
        except Exception as e:  # the create error must reach the caller, whatever this does
            logger.warning(f"poststop hooks after failed create: {e}")
