"""What the container's init does, in order, between fork and execve of process.args.

Runs in the child after the namespaces exist. Every failure is reported to the runtime over the
sync pipe and ends the child; success is reported as "ready", then init blocks on exec.fifo until
`start`, and becomes the container's process.
"""
import os

from pyrunc.errors import PyruncError, StepError
from pyrunc.process import fds, sync
from pyrunc.sys import consts as c
from pyrunc.sys.calls import prctl, sethostname, setdomainname


class InitArgs:
    """Everything init needs, computed by the runtime before fork."""

    def __init__(self, config, bundle, rootfs, namespaces, cgroup, fifo_fd, sync_fd, no_pivot=False,
                 preserve_fds=0, keyring=None):
        self.config, self.bundle, self.rootfs = config, bundle, rootfs
        self.namespaces, self.cgroup = namespaces, cgroup
        self.fifo_fd, self.sync_fd = fifo_fd, sync_fd
        self.no_pivot, self.preserve_fds = no_pivot, preserve_fds
        self.keyring = keyring  # name of a fresh session keyring, None for --no-new-keyring
        self.seccomp = None  # in init: a prepared filter still to load just before execve
        self.seccomp_ack = None  # notify: the (read, write) pipe the runtime answers on once the agent has the listener
        self.idmapped = {}  # {mount index: detached idmapped tree fd}, made by the runtime (linux/idmap.py)
        self.on_init_pid = None  # called by spawn with init's pid as soon as it is known, while init works
        self.on_seccomp_listener = None  # called by spawn with (init's pid, its listener fd number)
        self.process_env = None  # in init: the process's environment, once computed (startContainer hooks)


def preload(config):
    """Import everything init will run for this config, before fork: after pivot_root no module
    can be loaded any more (process/sealed_imports.py). Parts a config does not use are skipped."""
    from pyrunc.linux import capabilities, devices, lsm, masks, mounts, rlimits, rootfs, user  # noqa: F401
    from pyrunc.process import become, execpath, sealed_imports  # noqa: F401
    from pyrunc.sys import calls  # noqa: F401
    linux = config.get("linux") or {}
    if (config.get("process") or {}).get("terminal"):
        from pyrunc.process import console  # noqa: F401
    if config.get("hooks"):
        from pyrunc.process import hooks, init_hooks  # noqa: F401
    if linux.get("personality"):
        from pyrunc.linux import personality  # noqa: F401
    if linux.get("sysctl"):
        from pyrunc.linux import sysctl  # noqa: F401
    if any("tmpcopyup" in (m.get("options") or ()) for m in config.get("mounts") or ()):
        from pyrunc.linux import tmpcopyup  # noqa: F401


def _oom_score_adj(value):
    try:
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write(str(value))
    except OSError as e:
        raise StepError("write oom_score_adj", "/proc/self/oom_score_adj", e) from None


def setup(args):
    """All of create, inside the new namespaces; returns (executable path, argv, env)."""
    from pyrunc.linux import rootfs

    config = args.config
    process = config.get("process") or {}
    linux = config.get("linux") or {}
    os.setsid()
    os.umask(0)  # device nodes and mount points get exactly the modes we ask for
    if linux.get("seccomp"):
        # Built (and libseccomp loaded) now, while the host's libraries are reachable; loaded later.
        from pyrunc.linux import seccomp
        from pyrunc.linux.seccomp import notify  # noqa: F401 (hand_over runs after the imports are sealed)
        args.seccomp = seccomp.prepare(linux["seccomp"])
    args.namespaces.bring_up_loopback()
    if args.namespaces.private("uts"):
        if config.get("hostname"):
            sethostname(config["hostname"])
        if config.get("domainname"):
            setdomainname(config["domainname"])
    own_mount_ns = args.namespaces.private("mount")
    rootfs.prepare(config, args.bundle, args.rootfs, args.cgroup, args.namespaces.private("cgroup"), args.idmapped,
                   own_mount_ns)
    if config.get("hooks"):
        from pyrunc.process import init_hooks
        init_hooks.before_pivot(args)
    rootfs.enter(args.rootfs, args.no_pivot, own_mount_ns)
    from pyrunc.process import sealed_imports
    sealed_imports.seal()
    if process.get("terminal"):
        from pyrunc.process import console
        console.setup_console(args.console_fd, process.get("consoleSize"))
    if linux.get("sysctl"):
        from pyrunc.linux import sysctl
        sysctl.apply(linux["sysctl"])
    if own_mount_ns:  # runc too leaves the rootfs as it is without one (no read-only remounts)
        rootfs.finalize(config)

    if args.keyring:
        from pyrunc.sys.calls import join_session_keyring
        try:
            join_session_keyring(args.keyring)
        except OSError as e:
            raise StepError("join session keyring", args.keyring, e) from None
    if process.get("oomScoreAdj") is not None:
        _oom_score_adj(process["oomScoreAdj"])

    def load_seccomp_while_privileged():
        if args.seccomp and not process.get("noNewPrivileges"):
            # Without no_new_privs loading a filter needs CAP_SYS_ADMIN: load it while we have it (runc too).
            _load_seccomp(args)

    from pyrunc.process.become import become
    path, argv, env = become(process, load_seccomp_while_privileged)
    if linux.get("personality"):
        from pyrunc.linux import personality
        personality.apply(linux["personality"])
    if args.seccomp and args.seccomp.uses_notify:
        # The listener must reach the agent during create, so this filter cannot wait for start.
        _load_seccomp(args)
    return path, argv, env


def _load_seccomp(args):
    listener_fd = args.seccomp.load()
    args.seccomp = None
    if listener_fd is not None:
        from pyrunc.linux.seccomp import notify
        notify.hand_over(args.sync_fd, args.seccomp_ack, listener_fd)


def wait_for_start(fifo_fd, keep_open=False):
    """Block until `start` opens exec.fifo for reading, then tell it we are about to exec.

    keep_open: return the (CLOEXEC) write end, for startContainer hooks to report on; `start`
    reads until execve closes it."""
    try:
        fd = os.open(f"/proc/self/fd/{fifo_fd}", os.O_WRONLY | os.O_CLOEXEC)
    except OSError as e:
        raise StepError("open exec fifo", f"/proc/self/fd/{fifo_fd}", e) from None
    try:
        os.write(fd, b"0")
    except BrokenPipeError:
        pass  # the start that released us was killed before reading: released all the same
    os.close(fifo_fd)
    if keep_open:
        return fd
    os.close(fd)
    return None


def main(args):
    """Entry of the init child. Never returns."""
    status = 1
    try:
        # Non-dumpable while the runtime's interpreter is this process: no container process may
        # ptrace it or open /proc/<pid>/exe (the host's python) until execve replaces it.
        prctl(c.PR_SET_DUMPABLE, 0)
        path, argv, env = setup(args)
        args.process_env = env  # what startContainer hooks without `env` inherit, as under runc
        sync.send(args.sync_fd, sync.READY)
        os.close(args.sync_fd)
        if args.config.get("hooks"):
            from pyrunc.process import init_hooks
            init_hooks.start_container(args, wait_for_start)
        else:
            wait_for_start(args.fifo_fd)
        fds.close_on_exec_from(args.preserve_fds, filtered=_filtered(args))
        if args.seccomp:
            args.seccomp.load()  # the last step: nothing of the runtime's own runs under the filter
        from pyrunc.linux import rlimits
        rlimits.execve(path, argv, env)  # with the rlimits that would have starved the interpreter
    except PyruncError as e:
        _report(args.sync_fd, str(e))
    except OSError as e:
        _report(args.sync_fd, str(StepError("container init", None, e)))
    except BaseException as e:  # a bug in init: report it rather than vanish
        _report(args.sync_fd, f"internal error in container init: {type(e).__name__}: {e}")
    os._exit(status)


def _filtered(args):
    """A filter is loaded already (configured, and no longer waiting to be)."""
    return bool((args.config.get("linux") or {}).get("seccomp")) and args.seccomp is None


def _report(sync_fd, message):
    try:
        sync.send(sync_fd, sync.ERROR, message=message)
    except OSError:
        # The runtime has gone (after ready, during start): the container's stderr is all we have.
        try:
            os.write(2, f"pyrunc init: {message}\n".encode())
        except OSError:
            pass
