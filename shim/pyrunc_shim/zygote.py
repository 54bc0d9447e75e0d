"""One warm interpreter that forks every daemonless monitor, so an idle container costs only the
pages its monitor dirtied after the fork (~0.3-0.6 MB) instead of a whole interpreter of its own
(~2.5 MB private for a bare CPython 3.11, ~5 MB with the monitor's modules).

How a monitor is made: podman (or pyctr) runs `pyrunc-shim ...` as it runs conmon. That launcher
reads the start pipe (podman first moves it into the monitor's cgroup), then hands its argv,
environment, working directory and fds (sync, start and attach pipes, stdio) over a unix socket
to the zygote. The zygote forks a child which joins every cgroup the launcher is in, reports its
pid and, once the launcher confirms it has taken that pid for --conmon-pidfile, becomes the
monitor exactly as the launcher's own fork would have (monitor.serve). Nothing of the container
runs in the zygote: if it is killed, every monitor and container it forked lives on (they are
not its children's children in any way that matters: each monitor is its own session, the
subreaper of its container, and writes the exit file itself). Any failure before the launcher's
confirmation leaves nothing behind (the child exits) and the launcher falls back to forking the
monitor itself.

Trust: the socket lives in a 0700 directory of the caller's uid and the zygote serves only peers
of its own uid (SO_PEERCRED). A child inherits the zygote's process attributes, not the
launcher's: the socket's name is a digest of every attribute a monitor inherits (namespaces,
credentials, capabilities, securebits, rlimits, umask, no_new_privs, seccomp, oom_score_adj,
the interpreter and this package), so a launcher that differs in any of them finds no zygote and
starts one of its own. A launcher that finds no zygote starts one before it reads the start pipe
(so the zygote stays in the caller's cgroup, not in the first monitor's) and forks its own monitor.
The zygote exits after IDLE seconds without a request: its monitors keep sharing its pages among
themselves.

Opt out with PYRUNC_SHIM_ZYGOTE=0."""
import os
import sys

import _socket

IDLE = 30.0
_MAX_MSG = 200 * 1024
_FD_SIZE = 4


def enabled():
    return os.environ.get("PYRUNC_SHIM_ZYGOTE", "1") != "0"


def socket_dir():
    if os.getuid() == 0:
        return "/run/pyrunc-shim"
    base = os.environ.get("XDG_RUNTIME_DIR")
    return os.path.join(base, "pyrunc-shim") if base else None


def _read(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return b""


def identity():
    """A digest of what a forked monitor inherits from its zygote instead of from its launcher."""
    import _sha256
    import resource
    h = _sha256.sha256()
    parts = [sys.executable, os.path.dirname(os.path.abspath(__file__)), str(sys.version_info),
             str((os.getuid(), os.geteuid(), os.getgid(), os.getegid(), sorted(os.getgroups())))]
    for ns in ("mnt", "pid", "net", "user", "ipc", "uts", "cgroup", "time"):
        try:
            parts.append(os.readlink(f"/proc/self/ns/{ns}"))
        except OSError:
            parts.append("-")
    for name in dir(resource):
        if name.startswith("RLIMIT_"):
            parts.append(f"{name}={resource.getrlimit(getattr(resource, name))}")
    old = os.umask(0o022)
    os.umask(old)
    parts.append(f"umask={old}")
    status = _read("/proc/self/status").splitlines()
    parts += [ln.decode() for ln in status if ln.split(b":")[0] in
              (b"CapInh", b"CapPrm", b"CapEff", b"CapBnd", b"CapAmb", b"NoNewPrivs", b"Seccomp",
               b"Seccomp_filters")]
    parts.append(_read("/proc/self/oom_score_adj").decode().strip())
    parts.append(_read("/proc/self/attr/current").decode(errors="replace").strip("\0\n"))
    for p in parts:
        h.update(p.encode() + b"\0")
    return h.hexdigest()[:24]


_path = []


def socket_path():
    if not _path:
        d = socket_dir()
        _path.append(None if d is None else os.path.join(d, f"zygote-{identity()}.sock"))
    return _path[0]


# -- the launcher's side ---------------------------------------------------------------------------
def launch(argv, fds, timeout=10.0):
    """Ask the zygote for a monitor running `pyrunc-shim argv` with fds (a dict role -> fd, incl.
    stdio): -> its pid, confirmed (the caller must now record it and exit), or None (no zygote,
    or it failed: nothing was started, the caller forks the monitor itself)."""
    if not enabled():
        return None
    path = socket_path()
    if path is None:
        return None
    import marshal
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_SEQPACKET)
    try:
        sock.settimeout(timeout)
        try:
            sock.connect(path)
        except OSError:
            return None
        roles = sorted(fds)
        msg = marshal.dumps((list(argv), dict(os.environ), os.getcwd(), os.getpid(), roles))
        if len(msg) > _MAX_MSG:
            return None
        payload = b"".join(fds[r].to_bytes(_FD_SIZE, sys.byteorder) for r in roles)
        sock.sendmsg([msg], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, payload)])
        reply = sock.recv(64)
        if not reply.startswith(b"pid "):
            return None
        pid = int(reply[4:])
        sock.send(b"go")  # from here the monitor is ours to report: never fall back after this
        return pid
    except (OSError, ValueError):
        return None
    finally:
        sock.close()


def prestart():
    """Start a zygote in the background if none serves our identity: called before the start pipe
    is read, so it stays in the caller's cgroup (not in the first container's monitor cgroup, which
    it would keep busy). This launcher forks its monitor itself; the next ones use the zygote."""
    if not enabled():
        return
    path = socket_path()
    if path is None:
        return
    probe = _socket.socket(_socket.AF_UNIX, _socket.SOCK_SEQPACKET)
    try:
        probe.connect(path)
        return
    except OSError:
        pass
    finally:
        probe.close()
    _start_zygote(path)


def _start_zygote(path):
    """A zygote of our own identity, detached (its own session, stdio on /dev/null, cwd /)."""
    d = os.path.dirname(path)
    try:
        os.makedirs(d, mode=0o700, exist_ok=True)
        st = os.stat(d)
        if st.st_uid != os.getuid() or st.st_mode & 0o077:
            return  # not a directory only we control: no zygote
    except OSError:
        return
    pid = os.fork()
    if pid:
        os.waitpid(pid, 0)
        return
    try:
        os.setsid()
        if os.fork():
            os._exit(0)
        null = os.open(os.devnull, os.O_RDWR)
        for i in range(3):
            os.dup2(null, i)
        os.closerange(3, 1 << 16)
        os.chdir("/")  # holds no directory (or mount) of the caller busy; each monitor gets its own
        env = {k: v for k, v in os.environ.items() if not k.startswith("_OCI_")}
        os.execve(sys.executable, [sys.executable, "-S", "-E", "-s", os.path.abspath(__file__), path], env)
    finally:
        os._exit(127)


# -- the zygote ------------------------------------------------------------------------------------
def _warm():
    """Everything a monitor imports, imported before the first fork: shared by every child."""
    import fcntl  # noqa: F401
    import struct  # noqa: F401
    import termios  # noqa: F401
    from pyrunc_shim import attachproto, children, conmon_cli, logs, monitor  # noqa: F401
    from pyrunc_shim import sys as shimsys  # noqa: F401


def serve(path):
    import gc
    import select
    _warm()
    listener = _socket.socket(_socket.AF_UNIX, _socket.SOCK_SEQPACKET)
    tmp = f"{path}.{os.getpid()}"
    try:
        listener.bind(tmp)
        os.chmod(tmp, 0o600)
        listener.listen(64)
        # only one zygote per identity: the first to link its socket in serves, the others go
        if not _link_unless_live(tmp, path):
            raise OSError("a live zygote serves this identity")
    except OSError:
        listener.close()
        _unlink(tmp)
        return
    _unlink(tmp)
    pidfile = path[:-len(".sock")] + ".pid"  # who serves this socket, for operators and tests
    with open(pidfile, "w") as f:
        f.write(str(os.getpid()))
    import _signal
    _signal.signal(_signal.SIGTERM, lambda *_: sys.exit(0))  # leave by the finally below
    gc.collect()
    gc.freeze()  # the collector of a child never touches (and so never copies) the warm pages
    ep = select.epoll()
    ep.register(listener.fileno(), select.EPOLLIN)
    me = os.getuid()
    try:
        while ep.poll(IDLE):
            try:
                fd, _ = listener._accept()
            except OSError:
                continue
            conn = _socket.socket(_socket.AF_UNIX, _socket.SOCK_SEQPACKET, 0, fd)
            try:
                cred = conn.getsockopt(_socket.SOL_SOCKET, _socket.SO_PEERCRED, 12)
                uid = int.from_bytes(cred[4:8], sys.byteorder)
                if uid == me:
                    _fork_monitor(conn, listener, ep)
            except (OSError, ValueError, EOFError, TypeError):
                pass  # a probe (connect and close) or a bad request: the next one is served
            finally:
                conn.close()
    finally:
        # the name goes only if it is still ours (a newer zygote may have taken it over)
        try:
            if _read(pidfile) == str(os.getpid()).encode():
                _unlink(path)
                _unlink(pidfile)
        except OSError:
            pass


def _link_unless_live(tmp, path):
    try:
        os.link(tmp, path)
        return True
    except FileExistsError:
        pass
    probe = _socket.socket(_socket.AF_UNIX, _socket.SOCK_SEQPACKET)
    try:
        probe.connect(path)
        return False  # a live one
    except ConnectionRefusedError:  # the name of a zygote that was killed: take it over
        _unlink(path)
        try:
            os.link(tmp, path)
            return True
        except OSError:
            return False
    except OSError:
        return False
    finally:
        probe.close()


def _fork_monitor(conn, listener, ep):
    import marshal
    conn.settimeout(10.0)
    msg, anc, _flags, _addr = conn.recvmsg(_MAX_MSG, _socket.CMSG_SPACE(_FD_SIZE * 8))
    fds = [int.from_bytes(d[i:i + _FD_SIZE], sys.byteorder) for lvl, typ, d in anc
           if lvl == _socket.SOL_SOCKET and typ == _socket.SCM_RIGHTS
           for i in range(0, len(d) - _FD_SIZE + 1, _FD_SIZE)]
    try:
        if not msg:
            return  # a launcher's probe: is a zygote there?
        argv, env, cwd, launcher, roles = marshal.loads(msg)
        if len(roles) != len(fds):
            return
        pid = os.fork()
        if pid == 0:
            # forked twice, as conmon detaches: the monitor is reparented to init (or the nearest
            # subreaper), so its exit is reaped at once and the zygote has no children to wait for
            try:
                if os.fork() == 0:
                    _child(conn, listener, ep, argv, env, cwd, launcher, dict(zip(roles, fds)))
            finally:
                os._exit(0)
        os.waitpid(pid, 0)
    finally:
        for fd in fds:
            os.close(fd)


def _child(conn, listener, ep, argv, env, cwd, launcher, fds):
    code = 1
    try:
        import _signal
        _signal.signal(_signal.SIGTERM, _signal.SIG_DFL)
        ep.close()
        listener.close()
        os.setsid()
        join_cgroups_of(launcher)
        conn.send(f"pid {os.getpid()}".encode())
        if conn.recv(8) != b"go":
            os._exit(0)  # the launcher gave up: it starts the monitor itself
        conn.close()
        os.environ.clear()
        os.environ.update(env)
        os.chdir(cwd)
        for i, role in enumerate(("stdin", "stdout", "stderr")):
            fd = fds.pop(role)
            os.dup2(fd, i)
            os.close(fd)  # the launcher's stdout may be its caller's pipe: only 0-2 may hold it
        from pyrunc_shim import monitor
        code = monitor.serve_forked(argv, fds)
    except BaseException:
        code = 1
    finally:
        os._exit(code)


def join_cgroups_of(pid):
    """Move this process into every cgroup (v1 hierarchies and v2) that process pid is in, as
    the fork of that process would have been."""
    mounts = {}
    for line in _read("/proc/self/mountinfo").decode(errors="replace").splitlines():
        left, _sep, right = line.partition(" - ")
        f, r = left.split(), right.split()
        if len(r) < 3 or f[3] != "/":
            continue
        if r[0] == "cgroup2":
            mounts.setdefault("", f[4])
        elif r[0] == "cgroup":
            for opt in r[2].split(","):
                mounts.setdefault(opt, f[4])
    me = str(os.getpid())
    for line in _read(f"/proc/{pid}/cgroup").decode(errors="replace").splitlines():
        _hid, ctrls, path = line.split(":", 2)
        root = mounts.get(ctrls.split(",")[0] if ctrls else "")
        if root is None:
            continue  # a hierarchy not mounted here: nothing a fork would be seen in either
        with open(os.path.join(root, path.lstrip("/"), "cgroup.procs"), "w") as f:
            f.write(me)


def _unlink(path):
    try:
        os.unlink(path)
    except OSError:
        pass


if __name__ == "__main__":
    # the package's parent, not this file's directory (whose sys.py would shadow nothing, but
    # whose module names are not the standard library's)
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if len(sys.argv) == 2:
        serve(sys.argv[1])
