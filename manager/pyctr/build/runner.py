"""RUN: one container through the OCI runtime (`pyrunc run`, or --runtime) on the step's working
overlay, with the stage's env, user and workdir, Docker's default capabilities, a private network
namespace (`--network none`) or the host's (`host`), its output streamed to ours.

Mount points the runtime creates in the rootfs for its own mounts (/proc, /sys, /dev, the
resolv.conf/hosts binds) are removed from the upper dir afterwards when the image had none: they
are the runtime's, not the step's (Docker keeps them in its init layer)."""
import json
import os
import stat
import subprocess

from pyctr.errors import PyctrError

DOCKER_CAPS = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
               "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
               "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"]
_RUNTIME_PATHS = ("proc", "sys", "dev", "etc/resolv.conf", "etc/hosts", "etc/hostname")


class RunFailed(PyctrError):
    def __init__(self, created_by, code):
        super().__init__(f"The command '{created_by}' returned a non-zero code: {code}")
        self.code = code


def spec(rootfs, argv, env, cwd, user, network, hostname, volumes=()):
    from pyctr.image.bundle import resolve_user
    from pyrunc.spec.template import default_config
    s = default_config(args=argv, terminal=False)
    uid, gid, extra = resolve_user(rootfs, user)
    s["process"]["user"] = {"uid": uid, "gid": gid, **({"additionalGids": extra} if extra else {})}
    s["process"]["env"] = env
    s["process"]["cwd"] = cwd or "/"
    s["process"]["capabilities"] = {k: list(DOCKER_CAPS) for k in ("bounding", "effective", "permitted")}
    s["process"]["noNewPrivileges"] = False
    s["process"].pop("rlimits", None)  # the builder's own limits, as Docker's default
    s["root"] = {"path": rootfs, "readonly": False}
    s["hostname"] = hostname
    for v in volumes:
        # Docker gives RUN a fresh volume seeded from the image: what RUN writes there is dropped
        s["mounts"].append({"destination": v, "type": "tmpfs", "source": "tmpfs",
                            "options": ["rw", "nosuid", "nodev", "tmpcopyup", "mode=755"]})
    if network == "host":
        s["linux"]["namespaces"] = [n for n in s["linux"]["namespaces"] if n["type"] != "network"]
        for f in ("/etc/resolv.conf", "/etc/hosts"):
            if os.path.isfile(f) and os.path.isfile(os.path.join(rootfs, f[1:])):
                s["mounts"].append({"destination": f, "type": "bind", "source": f, "options": ["rbind", "ro"]})
    return s


def _present(root):
    return {p for p in _RUNTIME_PATHS if os.path.lexists(os.path.join(root, p))}


def _drop_runtime_stubs(upper, before):
    for p in _RUNTIME_PATHS:
        if p in before:
            continue
        path = os.path.join(upper, p)
        try:
            st = os.lstat(path)
        except OSError:
            continue
        try:
            if stat.S_ISDIR(st.st_mode) and not os.listdir(path):
                os.rmdir(path)
            elif stat.S_ISREG(st.st_mode) and st.st_size == 0:
                os.unlink(path)
        except OSError:
            pass


def run(ws, mount, argv, env, cwd, user, network, created_by, quiet, volumes=()):
    """Run argv in the working mount; raises RunFailed with the command's status. The workdir and
    the volume mount points are created first (in the step's layer, as Docker's are)."""
    import posixpath
    from pyctr.build.copier import Owner, Target
    cid = "build-" + os.urandom(6).hex()
    volumes = sorted(posixpath.normpath("/" + v) for v in volumes)
    for d in ([cwd] if cwd and cwd != "/" else []) + volumes:
        Target(mount.merged, Owner(), None).mkdirs(d)
    before = _present(mount.merged)
    bundle = os.path.join(mount.dir, "bundle")
    os.makedirs(bundle)
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(spec(mount.merged, argv, env, cwd, user, network, cid[6:], volumes), f)
    out = subprocess.DEVNULL if quiet else None
    try:
        proc = subprocess.Popen([ws.runtime, "--root", ws.state_root, "run", "--bundle", bundle, cid],
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT if quiet else None)
    except OSError as e:
        raise PyctrError(f"cannot run the OCI runtime {ws.runtime}: {e.strerror}") from None
    try:
        code = proc.wait()
    except BaseException:  # ctrl-c: the container goes before its rootfs is unmounted and removed
        proc.kill()
        proc.wait()
        subprocess.run([ws.runtime, "--root", ws.state_root, "delete", "--force", cid],
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        raise
    mount.unmount()
    _drop_runtime_stubs(mount.upper, before)
    if code != 0:
        raise RunFailed(created_by, code)
