"""`pyrunc-shim`: the daemonless monitor, conmon's contract (flags in conmon_cli.py). It runs
`<runtime> create` (or `exec --detach`) for one container, then supervises it until it exits:
output to k8s-file/json-file logs (logs.py, rotated by size), an attach socket many clients join
and leave (attachproto.py: conmon's packets, Docker's detach keys), pty resize through the ctl and
winsz fifos, and, once stdio is drained and the logs synced, the exit file (decimal code,
128+signal when killed) and the exit command.

One thread and one epoll loop: no ttrpc, no protobuf, no threading, only C modules besides the
shim's own pure ones, so an idle monitor costs little more than the interpreter. Without --sync
it forks and the parent exits (writing --conmon-pidfile), so the container outlives its caller;
_OCI_SYNCPIPE and _OCI_STARTPIPE behave as conmon's."""
import os
import select
import sys
import time

import _signal
import _socket
from _json import encode_basestring as _jstr

from pyrunc_shim import attachproto, conmon_cli
from pyrunc_shim.children import exit_code, reaped
from pyrunc_shim.logs import LogWriter

_READ = 1 << 20       # one read takes what a (1 MiB) pipe holds
_PIPE_SIZE = 1 << 20
_IN, _OUT, _ERRS = select.EPOLLIN, select.EPOLLOUT, select.EPOLLERR | select.EPOLLHUP
_TERM_SIGNALS = (_signal.SIGTERM, _signal.SIGINT, _signal.SIGQUIT)


class Fatal(Exception):
    """Supervision cannot go on: the message goes to _OCI_SYNCPIPE and stderr."""


def _env_fd(name):
    v = os.environ.pop(name, None)
    if not v:
        return None
    try:
        fd = int(v)
        os.set_inheritable(fd, False)
    except (ValueError, OSError) as e:
        raise Fatal(f"{name}={v!r}: not an open file descriptor ({e})") from None
    return fd


def _write_file(path, data):
    """Atomically (a reader never sees half an exit file)."""
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        os.write(fd, data.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _unlink(path):
    try:
        os.unlink(path)
    except OSError:
        pass


class Monitor:
    def __init__(self, o, syncfd, attachfd=None, startfd=None):
        self.o = o
        self.syncfd = syncfd
        # --exec-attach (conmon's): told on attachfd once the attach socket listens; the exec
        # itself waits for a second message on startfd, sent once the caller has attached
        self.attachfd, self.startfd = attachfd, startfd
        self.ep = select.epoll()
        self.handlers = {}
        self.exits = {}
        self.writers = []
        self.passthrough = False
        self.clients = {}
        self.keys = attachproto.parse_detach_keys(
            attachproto.DEFAULT_DETACH_KEYS if o.detach_keys is None else o.detach_keys)
        self.outputs = {}           # fd -> stream name
        self.stdin_w = -1
        self.stdin_pending = bytearray()
        self.master = -1
        self.pid = 0
        self.runtime_pid = 0
        self.create_output = bytearray()  # the runtime's last words, for the error message
        self.attach_path = self.attach_link = None
        self.fifos = []
        self.console_dir = None
        self.listener = self.attach = None
        self.ctl_buf = {}
        self.timed_out = False
        self.pidfile = o.container_pidfile or os.path.join(o.bundle, f"pidfile-{o.cid}")

    # -- event loop -----------------------------------------------------------------------------
    def add(self, fd, events, fn):
        self.handlers[fd] = fn
        self.ep.register(fd, events)

    def remove(self, fd, close=True):
        if self.handlers.pop(fd, None) is not None:
            self.ep.unregister(fd)
        if close:
            os.close(fd)

    def poll(self, timeout=-1):
        events = self.ep.poll(timeout)
        if len(events) > 1 and self.attach is not None:
            # a client that connected before the output arrived sees it (podman's exec attaches,
            # then lets the process start): accept before copying
            lfd = self.attach.fileno()
            events.sort(key=lambda e: e[0] != lfd)
        for fd, ev in events:
            fn = self.handlers.get(fd)
            if fn is not None:
                fn(fd, ev)

    # -- signals and exits ----------------------------------------------------------------------
    def setup_signals(self):
        r, w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        _signal.set_wakeup_fd(w)

        def noop(*_):
            pass
        for sig in (_signal.SIGCHLD,) + _TERM_SIGNALS:
            _signal.signal(sig, noop)
        self.add(r, _IN, self.on_signal)
        self.reap()  # a child that exited before the handler existed

    def on_signal(self, fd, _ev):
        try:
            sigs = os.read(fd, 512)
        except BlockingIOError:
            return
        for sig in set(sigs):
            if sig in _TERM_SIGNALS:  # as conmon: a monitor told to stop passes it on
                target = self.pid or self.runtime_pid
                if target and target not in self.exits:
                    try:
                        os.kill(target, sig)
                    except ProcessLookupError:
                        pass
        self.reap()

    def reap(self):
        for pid, status in reaped():
            if self.pid == 0 or pid == self.pid:
                self.exits[pid] = exit_code(status)

    # -- stdio ----------------------------------------------------------------------------------
    def setup_logs(self):
        sync = not self.o.no_sync_log
        for driver, path in self.o.logs():
            if driver == "passthrough":
                self.passthrough = True
            elif driver in ("k8s-file", "json-file"):
                try:
                    self.writers.append(LogWriter(path, driver, max_size=max(self.o.log_size_max, 0),
                                                  max_files=self.o.log_max_files, sync=sync))
                except OSError as e:
                    raise Fatal(f"log file {path}: {e.strerror}") from None
        if not self.o.log_paths:  # conmon's default: k8s-file in the bundle
            self.writers.append(LogWriter(os.path.join(self.o.bundle, "ctr.log"), "k8s-file",
                                          max_size=max(self.o.log_size_max, 0),
                                          max_files=self.o.log_max_files, sync=sync))

    def setup_stdio(self):
        """-> (stdin, stdout, stderr) fds for the runtime command (and so the container)."""
        o = self.o
        if self.passthrough:
            return 0, 1, 2
        if o.stdin and not o.terminal:
            child_in, self.stdin_w = os.pipe()
            os.set_blocking(self.stdin_w, False)
        else:
            child_in = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        fds = [child_in]
        for stream in ("stdout", "stderr"):
            r, w = os.pipe()
            try:
                import fcntl
                fcntl.fcntl(r, fcntl.F_SETPIPE_SZ, _PIPE_SIZE)
            except OSError:
                pass  # over /proc/sys/fs/pipe-max-size: the default size works, in more reads
            os.set_blocking(r, False)
            self.outputs[r] = stream
            self.add(r, _IN, self.on_output)
            fds.append(w)
        if o.terminal:
            self.console_dir = f"/tmp/pyrunc-shim-{os.getpid()}-{time.monotonic_ns()}"
            os.mkdir(self.console_dir, 0o700)
            self.console_path = os.path.join(self.console_dir, "console.sock")
            self.listener = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
            self.listener.bind(self.console_path)
            self.listener.listen(1)
        return tuple(fds)

    def on_output(self, fd, _ev):
        stream = self.outputs[fd]
        try:
            data = os.read(fd, _READ)
        except BlockingIOError:
            return
        except OSError:  # EIO: the pty's last slave closed
            data = b""
        if not data:
            self.end_output(fd)
            return
        self.emit(stream, data)

    def emit(self, stream, data):
        if not self.pid and stream:
            self.create_output += data
            del self.create_output[:-4096]
        for w in self.writers:
            w.write(stream, data)
        if self.clients:
            pkts = attachproto.packets(attachproto.STDOUT if stream == "stdout" else attachproto.STDERR, data)
            for fd, (sock, _m) in list(self.clients.items()):
                try:
                    for p in pkts:
                        sock.send(p)
                except BlockingIOError:
                    pass  # a client that cannot keep up loses output, never stalls the container
                except OSError:
                    self.drop_client(fd)

    def end_output(self, fd):
        stream = self.outputs.pop(fd)
        self.remove(fd)
        if stream not in self.outputs.values():
            for w in self.writers:
                w.flush(stream)

    def accept_console(self):
        self.listener.settimeout(30)
        try:
            fd, _ = self.listener._accept()
        except OSError as e:
            raise Fatal(f"console socket: the runtime sent no terminal ({e})") from None
        conn = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM, 0, fd)
        try:
            conn.settimeout(30)
            _msg, anc, _f, _a = conn.recvmsg(4096, _socket.CMSG_SPACE(4))
        finally:
            conn.close()
            self.listener.close()
            self.listener = None
            _unlink(self.console_path)
            os.rmdir(self.console_dir)
            self.console_dir = None
        fds = [int.from_bytes(d[i:i + 4], sys.byteorder) for lvl, typ, d in anc
               if lvl == _socket.SOL_SOCKET and typ == _socket.SCM_RIGHTS for i in range(0, len(d) - 3, 4)]
        if not fds:
            raise Fatal("console socket: the runtime sent no pty master")
        self.master = fds[0]
        for extra in fds[1:]:
            os.close(extra)
        os.set_inheritable(self.master, False)
        os.set_blocking(self.master, False)
        self.outputs[self.master] = "stdout"
        self.add(self.master, _IN, self.on_output)
        # with a terminal, what attach clients type goes to it even without -i: podman passes
        # -t alone for `run -it` (-i only for a non-terminal stdin), and conmon types into the pty
        self.stdin_w = os.dup(self.master)

    # -- stdin ----------------------------------------------------------------------------------
    def write_stdin(self, data):
        if self.stdin_w < 0 or not data:
            return
        self.stdin_pending += data
        self.flush_stdin()

    def flush_stdin(self, fd=None, ev=0):
        try:
            while self.stdin_pending:
                n = os.write(self.stdin_w, self.stdin_pending)
                del self.stdin_pending[:n]
        except BlockingIOError:
            if self.stdin_w not in self.handlers:
                self.add(self.stdin_w, _OUT, self.flush_stdin)
            return
        except OSError:  # the container closed its stdin
            self.close_stdin()
            return
        if self.stdin_w in self.handlers:
            self.remove(self.stdin_w, close=False)

    def close_stdin(self):
        if self.stdin_w >= 0:
            self.remove(self.stdin_w)
            self.stdin_w = -1
            self.stdin_pending.clear()

    # -- attach ---------------------------------------------------------------------------------
    def setup_attach(self):
        o = self.o
        base = o.bundle
        if o.socket_dir_path and not o.full_attach:
            # a short path to the bundle keeps sun_path under 108 bytes, as conmon
            os.makedirs(o.socket_dir_path, mode=0o700, exist_ok=True)
            self.attach_link = os.path.join(o.socket_dir_path, o.cuuid or o.cid)
            _unlink(self.attach_link)
            os.symlink(os.path.abspath(o.bundle), self.attach_link)
            base = self.attach_link
        self.attach_path = os.path.join(base, "attach")
        _unlink(self.attach_path)
        sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_SEQPACKET)
        old = os.umask(0o077)
        dirfd = -1
        try:
            # podman's --full-attach names the socket by its whole path, often over sun_path's 108
            # bytes: bound, as conmon binds it (and podman connects), through the directory's fd
            dirfd = os.open(os.path.dirname(self.attach_path), os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
            sock.bind(f"/proc/self/fd/{dirfd}/attach")
        except OSError as e:
            sock.close()
            raise Fatal(f"attach socket {self.attach_path}: {e.strerror or e}") from None
        finally:
            os.umask(old)
            if dirfd >= 0:
                os.close(dirfd)
        sock.listen(16)
        sock.setblocking(False)
        self.attach = sock
        self.add(sock.fileno(), _IN, self.on_attach)

    def on_attach(self, _fd, _ev):
        try:
            fd, _ = self.attach._accept()
        except OSError:
            return
        sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_SEQPACKET, 0, fd)
        sock.setblocking(False)
        self.clients[fd] = (sock, attachproto.DetachMatcher(self.keys))
        self.add(fd, _IN, self.on_client)

    def on_client(self, fd, _ev):
        sock, matcher = self.clients[fd]
        try:
            data = sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            self.drop_client(fd)
            data = b""
        if not data:  # the client's stdin ended (unless --leave-stdin-open, the container's too)
            if fd in self.clients:
                # a half close (podman's exec and attach without stdin shut their write side
                # at once): as conmon, it still gets the output until it goes away
                self.remove(fd, close=False)
            if not self.o.leave_stdin_open and self.o.stdin:
                self.close_stdin()
            return
        fwd, detached = matcher.feed(data)
        self.write_stdin(fwd)  # a no-op unless the container has a stdin (-i) or a terminal
        if detached:  # let go, container stdin stays open: another client may type next
            self.drop_client(fd)

    def drop_client(self, fd):
        got = self.clients.pop(fd, None)
        if got is not None:
            self.remove(fd, close=False)
            got[0].close()

    # -- control fifos --------------------------------------------------------------------------
    def setup_ctl(self):
        for name in ("ctl", "winsz"):
            path = os.path.join(self.o.bundle, name)
            _unlink(path)
            os.mkfifo(path, 0o600)
            # O_RDWR: writers come and go without an EOF here
            fd = os.open(path, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
            self.fifos.append(path)
            self.add(fd, _IN, self.on_ctl)

    def on_ctl(self, fd, _ev):
        try:
            data = os.read(fd, 4096)
        except BlockingIOError:
            return
        buf = self.ctl_buf.pop(fd, b"") + data
        *lines, rest = buf.split(b"\n")
        if rest:
            self.ctl_buf[fd] = rest[-256:]
        for line in lines:
            f = line.split()
            if len(f) != 3 or not all(x.isdigit() for x in f):
                continue  # conmon ignores a malformed line too
            typ, h, w = (int(x) for x in f)
            if typ == 1 and self.master >= 0:
                import fcntl
                import struct
                import termios
                try:
                    fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", h, w, 0, 0))
                except OSError:
                    pass
            elif typ == 2:
                for wr in self.writers:
                    wr.reopen()

    # -- the runtime ----------------------------------------------------------------------------
    def runtime_argv(self):
        o = self.o
        a = [o.runtime] + (["--systemd-cgroup"] if o.systemd_cgroup else []) + o.runtime_args
        if o.exec_:
            a += ["exec", "--pid-file", self.pidfile, "--process", o.exec_process_spec, "--detach"]
        else:
            a += ["create", "--bundle", o.bundle, "--pid-file", self.pidfile]
            a += ["--no-pivot"] if o.no_pivot else []
            a += ["--no-new-keyring"] if o.no_new_keyring else []
        if o.terminal:
            a += ["--console-socket", self.console_path]
        return a + o.runtime_opts + [o.cid]

    def spawn(self, argv, fds, pdeathsig=True, wait_fd=None):
        """fork + exec with Pdeathsig=SIGKILL (go-runc's; not for the exit command, which must
        outlive the monitor), default signal dispositions, stdio fds."""
        from pyrunc_shim import sys as shimsys
        err_r, err_w = os.pipe()
        env = dict(os.environ)
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:
            try:
                os.close(err_r)
                if pdeathsig:
                    shimsys.set_pdeathsig(_signal.SIGKILL)
                if pdeathsig and os.getppid() != parent:
                    os._exit(1)
                _signal.set_wakeup_fd(-1)
                for sig in (_signal.SIGPIPE, _signal.SIGXFSZ, _signal.SIGCHLD) + _TERM_SIGNALS:
                    _signal.signal(sig, _signal.SIG_DFL)
                for i, fd in enumerate(fds):
                    os.dup2(fd, i)
                if wait_fd is not None:  # conmon's exec-attach: exec only once the caller listens
                    os.read(wait_fd, 8192)
                os.execvpe(argv[0], argv, env)
            except BaseException as e:
                try:
                    os.write(err_w, str(getattr(e, "strerror", None) or e).encode())
                finally:
                    os._exit(127)
        os.close(err_w)
        try:
            msg = b""
            while True:  # EOF at exec (the pipe is close-on-exec)
                chunk = os.read(err_r, 4096)
                if not chunk:
                    break
                msg += chunk
        finally:
            os.close(err_r)
        if msg:
            raise Fatal(f"cannot run {argv[0]}: {msg.decode(errors='replace')}")
        return pid

    def create(self):
        fds = self.setup_stdio()
        argv = self.runtime_argv()
        try:
            self.runtime_pid = self.spawn(argv, fds, wait_fd=self.startfd)
        finally:
            if self.startfd is not None:
                os.close(self.startfd)
                self.startfd = None
            if not self.passthrough:
                for fd in fds:
                    os.close(fd)
        deadline = time.monotonic() + self.o.timeout if self.o.timeout > 0 else None
        while self.runtime_pid not in self.exits:
            left = -1 if deadline is None else deadline - time.monotonic()
            if deadline is not None and left <= 0:
                os.kill(self.runtime_pid, _signal.SIGKILL)
                deadline = None
                self.timed_out = True
                continue
            self.poll(min(left, 1.0) if left >= 0 else 1.0)
            self.reap()
        code = self.exits.pop(self.runtime_pid)
        verb = "exec" if self.o.exec_ else "create"
        if self.timed_out:
            raise Fatal(f"{os.path.basename(argv[0])} {verb}: timed out after {self.o.timeout}s")
        if code != 0:
            self.drain()
            words = [ln for ln in bytes(self.create_output).decode(errors="replace").splitlines() if ln.strip()]
            raise Fatal(f"{os.path.basename(argv[0])} {verb} failed (exit {code})"
                        + (f": {words[-1].strip()}" if words else ""))
        try:
            with open(self.pidfile) as f:
                self.pid = int(f.read().strip())
        except (OSError, ValueError) as e:
            raise Fatal(f"container pid file {self.pidfile}: {e}") from None
        # only the container's exit matters from now on
        self.exits = {p: c for p, c in self.exits.items() if p == self.pid}
        if self.o.terminal:
            self.accept_console()

    # -- exit -----------------------------------------------------------------------------------
    def drain(self):
        """What the container wrote before it exited (conmon does not wait for EOF: a process that
        inherited the pipes could hold them for ever)."""
        for fd in list(self.outputs):
            while fd in self.outputs:
                try:
                    data = os.read(fd, _READ)
                except BlockingIOError:
                    break
                except OSError:
                    data = b""
                if not data:
                    self.end_output(fd)
                    break
                self.emit(self.outputs[fd], data)

    def sync(self, value, message=None, exit=False, fd=None):
        """conmon's sync pipe line; api-version 0 spells the key pid (exit_code after an exec)."""
        fd = self.syncfd if fd is None else fd
        if fd is None:
            return
        key = "data" if self.o.api_version >= 1 else ("exit_code" if exit else "pid")
        msg = f'{{"{key}": {value}' + (f', "message": {_jstr(message)}' if message else "") + "}\n"
        try:
            os.write(fd, msg.encode())
        except OSError:
            pass

    def cleanup(self):
        for c in list(self.clients):
            self.drop_client(c)
        if self.attach is not None:
            self.attach.close()
            self.attach = None
        for p in filter(None, [self.attach_path, self.attach_link] + self.fifos):
            _unlink(p)
        if self.console_dir:
            if self.listener is not None:
                self.listener.close()
            _unlink(self.console_path)
            try:
                os.rmdir(self.console_dir)
            except OSError:
                pass

    def run(self):
        from pyrunc_shim import sys as shimsys
        shimsys.set_child_subreaper()
        self.setup_signals()
        self.setup_logs()
        self.setup_attach()
        self.setup_ctl()
        if self.attachfd is not None:
            self.sync(0, fd=self.attachfd)
            os.close(self.attachfd)
            self.attachfd = None
        self.create()
        self.sync(self.pid)
        while self.pid not in self.exits:
            self.poll(5.0)  # the timeout only guards against a lost wakeup
            self.reap()
        code = self.exits[self.pid]
        self.drain()
        for w in self.writers:
            w.close()  # partial lines flushed, fsynced (unless --no-sync-log)
        self.writers = []
        o = self.o
        if o.exit_dir:
            _write_file(os.path.join(o.exit_dir, o.cid), str(code))
        if o.persist_dir:
            _write_file(os.path.join(o.persist_dir, "exit"), str(code))
        if o.exec_:
            self.sync(code, exit=True)
        self.cleanup()
        if o.exit_command:
            if o.exit_delay > 0:
                time.sleep(o.exit_delay)
            pid = self.spawn_detached([o.exit_command] + o.exit_command_args)
            if pid:
                # as conmon (its atexit reaps its children): the monitor is gone only once the exit
                # command is, so a caller watching the monitor's pid (podman's WaitForExit polls a
                # pidfd of it) wakes when the container is cleaned up, not 250 ms later
                try:
                    os.waitpid(pid, 0)
                except ChildProcessError:
                    pass
        return code

    def spawn_detached(self, argv):
        try:
            # no Pdeathsig: if the monitor is killed while waiting for it, the exit command still runs
            return self.spawn(argv, (os.open(os.devnull, os.O_RDWR),) * 3, pdeathsig=False)
        except Fatal:
            return 0


def _write_pidfile(path, pid):
    if path:
        _write_file(path, str(pid))


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    try:
        o = conmon_cli.parse(argv)
    except conmon_cli.UsageError as e:
        sys.stderr.write(f"pyrunc-shim: {e}\n{conmon_cli.USAGE}\n")
        return 2
    if o.help:
        print(conmon_cli.USAGE)
        return 0
    if o.version:
        print(conmon_cli.version_text())
        return 0
    syncfd = None
    try:
        o.bundle = os.path.abspath(o.bundle)
        if not os.path.isdir(o.bundle):
            raise Fatal(f"bundle {o.bundle}: not a directory")
        attachproto.parse_detach_keys(o.detach_keys or "")
        syncfd = _env_fd("_OCI_SYNCPIPE")
        attachfd = _env_fd("_OCI_ATTACHPIPE") if o.exec_attach else None
        if o.exec_attach and attachfd is None:
            raise Fatal("--exec-attach needs _OCI_ATTACHPIPE")
        if not o.sync:
            from pyrunc_shim import zygote
            zygote.prestart()
        startfd = _env_fd("_OCI_STARTPIPE")
        if startfd is not None:  # the caller may first move us into a cgroup
            try:
                os.read(startfd, 8192)
            finally:
                if not o.exec_attach:  # else read again before the exec starts
                    os.close(startfd)
                    startfd = None
        if not o.sync:
            fds = {"stdin": 0, "stdout": 1, "stderr": 2}
            fds.update((role, fd) for role, fd in (("sync", syncfd), ("attach", attachfd), ("start", startfd))
                       if fd is not None)
            # a fork of a warm interpreter: little memory of its own. Not when the caller passed
            # fds for the monitor to hold (pyctr: its published ports' sockets): only a fork of
            # this process has them
            pid = None if _held_fds(fds.values()) else zygote.launch(argv, fds)
            if pid is None:
                pid = os.fork()
            if pid:
                _write_pidfile(o.conmon_pidfile, pid)
                os._exit(0)
            os.setsid()  # the caller's terminal and process group can go away
            _detach_stdio(o)
        else:
            _write_pidfile(o.conmon_pidfile, os.getpid())
    except (Fatal, ValueError, OSError) as e:
        sys.stderr.write(f"pyrunc-shim: {e}\n")
        if syncfd is not None:
            os.write(syncfd, f'{{"data": -1, "message": {_jstr(str(e))}}}\n'.encode())
        return 1
    return _supervise(o, syncfd, attachfd, startfd)


def _held_fds(known):
    """The inheritable fds above stdio that the caller passed beyond conmon's pipes."""
    held = []
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd > 2 and fd not in known:
            try:
                if os.get_inheritable(fd):
                    held.append(fd)
            except OSError:
                pass  # the fd of the listing itself, closed by now
    return held


def _detach_stdio(o):
    if not any(d == "passthrough" for d, _ in o.logs()):
        null = os.open(os.devnull, os.O_RDWR)
        for i in range(3):
            os.dup2(null, i)
        os.close(null)


def serve_forked(argv, fds):
    """The monitor forked by the zygote for a launcher that has checked argv, read the start
    pipe and exited: its fds (sync, attach, start) came over the zygote's socket."""
    o = conmon_cli.parse(argv)
    o.bundle = os.path.abspath(o.bundle)
    _detach_stdio(o)
    for fd in fds.values():
        os.set_inheritable(fd, False)
    return _supervise(o, fds.get("sync"), fds.get("attach"), fds.get("start"))


def _supervise(o, syncfd, attachfd, startfd):
    m = Monitor(o, syncfd, attachfd, startfd)
    try:
        m.run()
        return 0
    except (Fatal, OSError) as e:
        msg = str(e)
        m.sync(-1, msg)
        m.cleanup()
        for w in m.writers:
            try:
                w.close()
            except OSError:
                pass
        try:
            sys.stderr.write(f"pyrunc-shim: {msg}\n")
        except OSError:
            pass
        return 1


def entry():
    sys.exit(main())


if __name__ == "__main__":
    entry()
