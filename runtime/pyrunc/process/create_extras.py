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

    def after_spawn(self):
        """Init is ready: its copy of the console socket has done its job."""
        if self.own_console is not None:
            from pyrunc.process import console
            self.opts.console_master = console.receive_master(self.own_console)

    def close(self):
        for fd in self.fds:
            try:
                os.close(fd)
            except OSError:
                pass
        self.fds = []
