"""`pyctr exec`: the runtime's own exec in the foreground (stdio, and its pty for -t, passed
through), based on the container's process (its env, user, working directory), as Docker's.
Status: the process's, or 126 when it could not be started, found or not (dockerd's code for any
exec start failure; only `run` tells 127 from 126)."""
import os
import subprocess
import tempfile

from pyctr.container import state
from pyctr.container.errors import CommandError


def run(ctx, args, command):
    from pyctr.container.options import parse_env
    from pyrunc_shim.runtime import last_log_error
    cs = ctx.containers
    cid = cs.lookup(args.container)
    rec = cs.load(cid)
    rt = ctx.runtime(rec)
    st = state.derive(cs, rec, rt)
    if st.status == "paused":
        raise CommandError(f"Container {cid} is paused, unpause the container before exec")
    if st.status != "running":
        raise CommandError(f"Container {cid} is not running")
    if not command:
        raise CommandError("exec requires at least 2 arguments")
    a = ["exec"]
    if args.tty:
        a.append("--tty")
    if args.detach:
        a.append("--detach")
    if args.workdir:
        a += ["--cwd", args.workdir]
    for e in parse_env(args.env, args.env_file):
        a += ["--env", e]
    if args.user:
        a += ["--user", _user(cs, cid, args.user)]
    if args.privileged:
        from pyctr.container.caps import ALL_CAPS
        for c in ALL_CAPS:
            a += ["--cap", c]
    fd, log = tempfile.mkstemp(prefix="exec-", suffix=".log", dir=cs.dir(cid))
    os.close(fd)
    try:
        argv = [rt.binary, "--root", rt.root, "--log", log, "--log-format", "json"] + a + [cid] + list(command)
        stdin = None if (args.interactive or args.tty) else subprocess.DEVNULL
        if args.detach:
            stdin = subprocess.DEVNULL
        try:
            code = subprocess.call(argv, stdin=stdin,
                                   stdout=subprocess.DEVNULL if args.detach else None,
                                   stderr=subprocess.DEVNULL if args.detach else None)
        except OSError as e:
            raise CommandError(f"cannot run {rt.binary}: {e.strerror}") from None
        if code == 255:  # the runtime's own failure, not the process's status
            msg = last_log_error(log)
            if msg:
                if args.detach:
                    raise CommandError(f"OCI runtime exec failed: {msg}")
                return 126
        return code
    finally:
        os.unlink(log)


def _user(cs, cid, user):
    """name|uid[:group|gid] -> uid:gid, resolved in the container's /etc/passwd (safely)."""
    from pyctr.image.bundle import resolve_user
    from pyctr.errors import PyctrError
    try:
        uid, gid, _ = resolve_user(cs.path(cid, "bundle", "rootfs"), user)
    except PyctrError as e:
        raise CommandError(str(e)) from None
    return f"{uid}:{gid}"
