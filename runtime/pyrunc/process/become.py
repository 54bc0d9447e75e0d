"""The last steps before execve, shared by a container's init and an exec'd process.

rlimits, capabilities, the user switch, cwd, the environment and the executable's lookup,
noNewPrivileges and the exec-time LSM labels, in runc's order (finalizeNamespace): the bounding
set is dropped while still privileged, KEEPCAPS carries the permitted set across the uid change,
and the configured sets and ambient are applied after it.
"""
import errno
import os

from pyrunc.errors import StepError
from pyrunc.sys import consts as c
from pyrunc.sys.calls import prctl


def environment(process, uid):
    env = {}
    for entry in process.get("env") or ():
        key, _, value = entry.partition("=")
        env[key] = value
    if "HOME" not in env:
        from pyrunc.linux.user import home_for
        env["HOME"] = home_for(uid)
    return env


def default_signals():
    """Every signal back to its default disposition, as runc starts a container process.

    Only SIG_IGN survives execve, and the runtime's interpreter carries ignores a container must not inherit:
    python's own SIGPIPE and SIGXFSZ, and SIGHUP/SIGINT when whoever ran us ignored them (nohup, a
    `cmd &` of a non-interactive shell). A container's shell cannot trap an ignored signal, and
    `yes | head` never ends under an ignored SIGPIPE. Done first, before any seccomp filter can deny
    rt_sigaction."""
    import _signal as signal  # the signal package imports enum
    for sig in range(1, signal.NSIG):
        if signal.getsignal(sig) == signal.SIG_IGN:
            signal.signal(sig, signal.SIG_DFL)


def _chdir(cwd, retry_on_permission=False):
    try:
        os.chdir(cwd)
        return True
    except PermissionError:
        if retry_on_permission:
            return False
        raise StepError("chdir to cwd", cwd, "permission denied") from None
    except OSError as e:
        raise StepError("chdir to cwd", cwd, e) from None


def fix_stdio_owner(uid):
    """Give stdio (a terminal above all) to the container's uid before switching to it, keeping
    the group (devpts' gid=5, tty), as runc does: a non-root user can then reopen its own terminal.
    /dev/null and what already belongs to uid are left alone, and a refusal (an unmapped owner, a
    read-only /dev) is not an error."""
    try:
        null = os.stat("/dev/null").st_rdev
    except OSError:
        null = None
    for fd in (0, 1, 2):
        try:
            st = os.fstat(fd)
        except OSError:
            continue  # a closed stdio fd: nothing to give
        if st.st_uid == uid or (null is not None and st.st_rdev == null):
            continue
        try:
            os.fchown(fd, uid, st.st_gid)
        except OSError as e:
            if e.errno not in (errno.EINVAL, errno.EPERM, errno.EROFS):
                raise StepError("chown stdio to the container's user", f"fd {fd}", e) from None


def become(process, before_user_switch=None, extra_env=None):
    """Turn the calling process into `process`; returns (executable path, argv, env) for execve.

    before_user_switch: called while all privileges are still held (a seccomp filter without
    noNewPrivileges must be loaded then: it needs CAP_SYS_ADMIN). extra_env: variables the caller
    adds to process.env (socket activation)."""
    from pyrunc.linux import capabilities, lsm, rlimits, user
    from pyrunc.process.execpath import lookup

    default_signals()
    rlimits.apply(process.get("rlimits"))
    # cwd first as root, so a directory only root can reach works for any user; a permission
    # error is retried as the container's user, who may own a dir root cannot enter (runc too).
    cwd = process.get("cwd") or "/"
    entered = _chdir(cwd, retry_on_permission=True)
    fix_stdio_owner((process.get("user") or {}).get("uid", 0))
    caps = capabilities.CapabilitySets(process["capabilities"]) if process.get("capabilities") else None
    proc_user = process.get("user") or {}
    user.apply_umask(proc_user)
    if before_user_switch is not None:
        before_user_switch()
    # From here on a filter may be loaded: only the calls runc makes after it (see fds.py).
    if caps:
        caps.drop_bounding()
        prctl(c.PR_SET_KEEPCAPS, 1)
    user.switch(proc_user)
    if caps:
        prctl(c.PR_SET_KEEPCAPS, 0)
    if not entered:
        _chdir(cwd)
    env = environment(process, proc_user.get("uid", 0))
    if extra_env:
        env.update(extra_env)
    path = lookup(process["args"][0], [f"PATH={env['PATH']}"] if "PATH" in env else [])
    if caps:
        caps.apply()
    if process.get("noNewPrivileges"):
        prctl(c.PR_SET_NO_NEW_PRIVS, 1)
    lsm.apply_exec_labels(process)
    return path, process["args"], env
