"""A container's network namespace as a file bind-mounted under the run dir (as podman and `ip
netns` keep one): made before the CNI ADD, joined by the runtime by path, removed after the DEL."""
import os
import subprocess

from pyctr.network.errors import NetworkError


def path(ctx, cid):
    return os.path.join(ctx.runroot, "netns", cid)


def create(ctx, cid):
    p = path(ctx, cid)
    os.makedirs(os.path.dirname(p), mode=0o700, exist_ok=True)
    remove(ctx, cid)
    open(p, "w").close()
    cp = subprocess.run(["unshare", f"--net={p}", "true"], capture_output=True, close_fds=True)
    if cp.returncode != 0:
        remove(ctx, cid)
        raise NetworkError(f"cannot create the network namespace {p}: {cp.stderr.decode(errors='replace').strip()}")
    return p


def remove(ctx, cid):
    p = path(ctx, cid)
    if not os.path.exists(p):
        return
    from pyrunc.sys import calls
    from pyrunc.sys.consts import MNT_DETACH
    try:
        calls.umount2(p, MNT_DETACH)
    except OSError:
        pass
    try:
        os.unlink(p)
    except FileNotFoundError:
        pass
