"""What an exec'd process does between fork and execve, inside a running container.

Forked by the exec intermediate after it joined every namespace of the container (so this is
already in the container's pid namespace and sees the container's root), and after the runtime put
the intermediate in the container's cgroup. Failures go to the runtime over the sync pipe, which
is CLOEXEC: EOF without an error means execve succeeded.
"""
import os

from pyrunc.errors import PyruncError, StepError
from pyrunc.process import fds, sync


class ExecArgs:
    def __init__(self, container_id, config, process, ns_fds, console_fd, preserve_fds, sync_fd=None,
                 listen_fds=0):
        self.container_id, self.config, self.process = container_id, config, process
        self.ns_fds = ns_fds            # [(kind, path, fd)] of the container's init, join order
        self.console_fd = console_fd    # socket to send the pty master on, when process.terminal
        self.preserve_fds = preserve_fds
        self.listen_fds = listen_fds    # how many of preserve_fds are socket-activation fds
        self.pidfd_socket = None        # --pidfd-socket, used by the intermediate
        self.sync_fd = sync_fd
        self.seccomp = prepare_seccomp(config)
        self.seccomp_ack = None  # notify: the pipe the runtime answers on once the agent has the listener
        if self.seccomp is not None and self.seccomp.uses_notify:
            from pyrunc.linux.seccomp import notify  # noqa: F401 (the child uses it after the seal)
            self.seccomp_ack = os.pipe()


def preload(process):
    """Import what the exec'd process will run: once the intermediate has joined the container's
    mount namespace no module can be loaded any more (process/sealed_imports.py)."""
    from pyrunc.linux import capabilities, lsm, rlimits, user  # noqa: F401
    from pyrunc.process import become, execpath, sealed_imports  # noqa: F401
    if process.get("terminal"):
        from pyrunc.process import console  # noqa: F401


def prepare_seccomp(config):
    """The container's filter, built in the runtime: libseccomp is loaded from the host's
    filesystem, which the exec'd process no longer sees once it joined the mount namespace."""
    seccomp_config = (config.get("linux") or {}).get("seccomp")
    if not seccomp_config:
        return None
    from pyrunc.linux import seccomp
    return seccomp.prepare(seccomp_config)


def apply_seccomp(args, before_user_switch):
    """Load the container's filter as init does: before the user switch without noNewPrivileges
    (loading then needs CAP_SYS_ADMIN), else as the very last step before execve."""
    if args.seccomp is not None and before_user_switch != bool(args.process.get("noNewPrivileges")):
        listener_fd = args.seccomp.load()
        args.seccomp = None
        if listener_fd is not None:  # to the agent before anything else runs under the filter (as runc)
            from pyrunc.linux.seccomp import notify
            notify.hand_over(args.sync_fd, args.seccomp_ack, listener_fd)


def setup(args):
    process = args.process
    os.setsid()
    if process.get("terminal"):
        from pyrunc.process import console
        master, slave, name = console.open_pty(process.get("consoleSize"))
        console.send_master(args.console_fd, master, name)
        os.close(master)
        os.close(args.console_fd)
        console.become_stdio(slave)
    from pyrunc.sys.calls import join_session_keyring
    try:
        join_session_keyring(f"_ses.{args.container_id}")
    except OSError as e:
        raise StepError("join session keyring", f"_ses.{args.container_id}", e) from None
    listen = None
    if args.listen_fds:
        # sd_listen_fds(3) accepts only fds meant for the caller: we are not the container's pid 1,
        # so LISTEN_PID names us as the container sees us (we were forked inside its pid namespace).
        listen = {"LISTEN_FDS": str(args.listen_fds), "LISTEN_PID": str(os.getpid())}
    from pyrunc.process.become import become
    return become(process, lambda: apply_seccomp(args, before_user_switch=True), listen)


def main(args):
    """Entry of the exec'd process (already in the container's namespaces). Never returns."""
    try:
        path, argv, env = setup(args)
        fds.close_on_exec_from(args.preserve_fds, filtered=args.seccomp is None and bool(
            (args.config.get("linux") or {}).get("seccomp")))
        apply_seccomp(args, before_user_switch=False)
        from pyrunc.linux import rlimits
        rlimits.execve(path, argv, env)  # with the rlimits that would have starved the interpreter
    except PyruncError as e:
        message = str(e)
    except OSError as e:
        message = str(StepError("exec process", None, e))
    except BaseException as e:
        message = f"internal error in exec: {type(e).__name__}: {e}"
    try:
        sync.send(args.sync_fd, sync.ERROR, message=message)
    except OSError:
        pass
    os._exit(255)
