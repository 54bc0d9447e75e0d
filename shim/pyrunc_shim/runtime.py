"""The runtime (pyrunc, runc, crun) driven through its command line, as containerd's go-runc does:
`<binary> --root R --log <bundle>/log.json --log-format json [--systemd-cgroup] <verb> ...`.
Children are waited for through the Reaper (never waitpid here: the reaper reaps everything)."""
import json
import os
import subprocess

from pyrunc_shim.errors import ShimError
from pyrunc_shim.ttrpc import framing

DEFAULT_BINARY = "pyrunc"


class RuntimeError_(ShimError):
    pass


def _shim_dirs():
    """Where this shim is installed: its own script's directory, resolved (`start` runs the one
    linked onto containerd's PATH; the server runs as `python -m`), its interpreter's as invoked (a
    venv's bin/, not the system python that links to) and where pip puts this interpreter's
    console scripts (/usr/local/bin for a system install)."""
    import sys
    import sysconfig
    candidates = [os.path.dirname(sys.executable), sysconfig.get_path("scripts")]
    if sys.argv and sys.argv[0] and not sys.argv[0].endswith(".py") and not sys.argv[0].startswith("-"):
        candidates.insert(0, os.path.dirname(os.path.realpath(sys.argv[0])))
    dirs = []
    for d in candidates:
        if d and os.path.isabs(d) and d not in dirs:
            dirs.append(d)
    return dirs


def resolve_binary(name):
    """The runtime's executable: a path as given; a bare name beside the shim first (the pyrunc of
    the same installation, when only the shim is linked onto containerd's PATH), then on PATH.
    -> an absolute path, or a ShimError naming every place looked at."""
    from pyrunc_shim import errors
    name = name or DEFAULT_BINARY
    if "/" in name:
        if os.path.isfile(name) and os.access(name, os.X_OK):
            return os.path.abspath(name)
        raise errors.not_found(f"runtime binary {name!r} (not an executable file)")
    dirs = _shim_dirs()
    path = os.environ.get("PATH") or os.defpath
    for d in dirs + [p for p in path.split(os.pathsep) if p]:
        candidate = os.path.join(d, name)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return os.path.abspath(candidate)
    raise errors.not_found(f"runtime binary {name!r} (looked beside the shim in {', '.join(dirs)} "
                           f"and on PATH={path})")


def _pdeathsig():
    """preexec: go-runc's Pdeathsig=SIGKILL, so a runtime command dies with the shim (thread) that
    runs it instead of finishing a create nobody will supervise. glibc's fork keeps malloc usable
    in the child; the call itself allocates nothing."""
    from pyrunc_shim import sys as shimsys
    shimsys.set_pdeathsig(9)


def last_log_error(path):
    """The last level=error msg in the runtime's JSON log (what containerd surfaces)."""
    msg = ""
    try:
        with open(path, "rb") as f:
            for line in f:
                try:
                    obj = json.loads(line)
                except ValueError:
                    break
                if isinstance(obj, dict) and obj.get("level") in ("error", "fatal"):
                    msg = str(obj.get("msg", ""))
    except OSError:
        pass
    return msg


def _scratch(name):
    """An anonymous file for a command's output (memfd: tempfile would import shutil, random and
    hashlib, about 4 MB of resident libraries, into every shim)."""
    return open(os.memfd_create(f"runtime-{name}", os.MFD_CLOEXEC), "w+b")


class Runtime:
    def __init__(self, reaper, binary, root, bundle, systemd_cgroup=False):
        self.reaper = reaper
        self.binary = binary or DEFAULT_BINARY
        self.root = root
        self.bundle = bundle
        self.log = os.path.join(bundle, "log.json")
        self.systemd_cgroup = systemd_cgroup

    def argv(self, *args):
        a = [self.binary, "--root", self.root, "--log", self.log, "--log-format", "json"]
        if self.systemd_cgroup:
            a.append("--systemd-cgroup")
        return a + list(args)

    def run(self, *args, stdin=None, stdout=None, stderr=None, input_bytes=None, capture=False,
            pass_fds=()):
        """Run one runtime command to completion -> stdout bytes (when capture). stdio of commands
        that leave a container behind (create, exec -d) must be the container's, never a pipe we
        read to EOF: the container would hold it open."""
        out_file = _scratch("stdout") if capture else None
        err_file = _scratch("stderr")
        in_r = None
        if input_bytes is not None:
            in_r, in_w = os.pipe()
            os.write(in_w, input_bytes)  # small (a resources or process JSON): fits a pipe
            os.close(in_w)
            stdin = in_r
        try:
            p = subprocess.Popen(self.argv(*args), stdin=stdin if stdin is not None else subprocess.DEVNULL,
                                 stdout=out_file if capture else (stdout if stdout is not None else subprocess.DEVNULL),
                                 stderr=stderr if stderr is not None else err_file,
                                 pass_fds=pass_fds, cwd=self.bundle, start_new_session=False,
                                 preexec_fn=_pdeathsig)
            self.reaper.kick()
            code, _ = self.reaper.wait(p.pid)
            p.returncode = code  # keep Popen from ever waiting on a pid the reaper owns
        finally:
            if in_r is not None:
                os.close(in_r)
        err_file.seek(0)
        err = err_file.read().decode(errors="replace").strip()
        err_file.close()
        if code != 0:
            msg = last_log_error(self.log) or (err.splitlines()[-1] if err else "")
            raise ShimError(framing.UNKNOWN, f"{os.path.basename(self.binary)} {args[0]} failed (exit {code}): "
                                             f"{msg or 'no error message'}")
        if capture:
            out_file.seek(0)
            data = out_file.read()
            out_file.close()
            return data
        return b""

    def state(self, cid):
        return json.loads(self.run("state", cid, capture=True))
