"""`containerd-shim-pyrunc-v2`: the binary containerd runs for runtime io.containerd.pyrunc.v2.
  start   print the address of the shim serving this container's group (a pod's containers share
          one, see grouping), or bind a new socket and fork the long-lived server from this process
          (its own session) first; containerd reads the combined output: nothing else may be printed
  delete  clean up when the server is gone: `runtime delete --force`, unmount the rootfs, print a
          protobuf DeleteResponse (exit 128+SIGKILL, as containerd-shim-runc-v2)
  -v      version
Flags in Go's syntax (-flag value, -flag=value, --flag): namespace, id, address, publish-binary,
bundle, debug, socket (where to listen; default /run/containerd/s/<hash>).

The server (`serve`, the full mode) execs itself into the lean mode (lean.py: stdio copying in one
epoll loop, no protobuf, no threads) once it has been idle for LEAN_AFTER seconds, and the lean mode
execs `serve -state-fd N` back when a request, a connection, an exit or an OOM event comes: same
pid, same fds, the state handed over in a memfd (handover.py)."""
import os
import sys
import time

_BOOL = {"debug", "v", "version", "info"}
_VALUE = {"namespace", "id", "address", "publish-binary", "bundle", "socket", "state-fd"}
LEAN_AFTER = 1.5        # seconds without a request, exit or event before the server goes lean
                        # ($PYRUNC_SHIM_LEAN_AFTER overrides it: tests make the shim flip often)
QUIESCE_TIMEOUT = 0.5   # how long copies in progress may take to finish when it tries
START_OPTIONS_MAX = 1 << 20  # the options Any on start's stdin: a few hundred bytes


class UsageError(Exception):
    pass


def parse(argv):
    opts, rest = {}, []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a.startswith("-") and a != "-":
            name, eq, val = a.lstrip("-").partition("=")
            if name in _BOOL:
                opts[name] = val.lower() not in ("false", "0") if eq else True
            elif name in _VALUE:
                if not eq:
                    i += 1
                    if i >= len(argv):
                        raise UsageError(f"flag -{name} needs a value")
                    val = argv[i]
                opts[name] = val
            else:
                raise UsageError(f"unknown flag {a}")
        else:
            rest.append(a)
        i += 1
    return opts, rest


# containerd's runc shim (runtime/v2/runc/v2, StartShim): the containers whose spec carries one of
# these annotations share one shim, the first one's; the CRI plugin puts the pod's sandbox id on
# each container of a pod (and on the sandbox itself)
GROUP_ANNOTATIONS = ("io.containerd.runc.v2.group", "io.kubernetes.cri.sandbox-id")
CONFIG_MAX = 16 << 20  # a config.json is a few KiB; containerd wrote it, but bound the read anyway


def grouping(bundle, cid):
    """The key this container's shim is found by: its group's annotation, else its own id."""
    try:
        with open(os.path.join(bundle, "config.json"), "rb") as f:
            data = f.read(CONFIG_MAX)
    except OSError:
        return cid  # the runtime's create will say what is wrong with the bundle
    if not any(k.encode() in data for k in GROUP_ANNOTATIONS):
        return cid  # most specs: no JSON parse on start's path
    for k in GROUP_ANNOTATIONS:
        v = _plain_string_value(data, k)
        if v is None:  # not as Go's encoder writes it: parse the whole spec (json pulls in re: ~5 ms)
            import json
            try:
                annotations = json.loads(data).get("annotations") or {}
            except (ValueError, AttributeError):
                return cid
            v = annotations.get(k) if isinstance(annotations, dict) else None
        if isinstance(v, str) and v:
            return v
    return cid


def _plain_string_value(data, key):
    """The value of `"key":"value"` when it occurs exactly once in data, without whitespace or escapes
    (how containerd writes a sandbox id); None when it is not that simple (the caller parses then)."""
    needle = b'"' + key.encode() + b'":"'
    at = data.find(needle)
    if at < 0 or data.find(needle, at + 1) >= 0:
        return None
    start = at + len(needle)
    end = data.find(b'"', start)
    value = data[start:end] if end > 0 else b"\\"
    if b"\\" in value or b"\n" in value:
        return None
    try:
        return value.decode()
    except UnicodeDecodeError:
        return None


def socket_path(opts, key=None):
    """containerd's shim.SocketAddress: /run/containerd/s/sha256(<address>/<namespace>/<key>)."""
    if opts.get("socket"):
        return opts["socket"]
    import hashlib  # not at the top: libcrypto is ~3.4 MB resident in every serving shim
    key = f"{opts.get('address', '')}/{opts.get('namespace', '')}/{key or opts['id']}".encode()
    return "/run/containerd/s/" + hashlib.sha256(key).hexdigest()


def cmd_start(opts):
    """Print the address of the shim that serves this container: the live one of its group, or a
    new one forked from this process (no second interpreter start; the fork imports protobuf and
    the service while containerd reads the address and connects, its first request waits in the
    listening socket's backlog). Only a bind, a fork and small reads happen before the print."""
    from pyrunc_shim.ttrpc.listen import claim
    bundle = opts.get("bundle") or os.getcwd()
    path = socket_path(opts, grouping(bundle, opts["id"]))
    address = "unix://" + path
    listener = claim(path)
    if listener is not None:
        log_fd = -1
        try:
            start_options = _start_options()
            log_fd = _open_log_fifo(bundle)
            if os.fork() == 0:
                _become_server(dict(opts, bundle=bundle, socket=path), listener, log_fd, start_options)
        except BaseException:  # no server: the name goes with the socket, nobody finds a dead one
            listener.close()
            os.unlink(path)
            raise
        finally:
            if log_fd >= 0:
                os.close(log_fd)
        listener.close()
    with open(os.path.join(bundle, "address"), "w") as f:  # read by containerd when it restarts
        f.write(address)
    sys.stdout.write(address)
    sys.stdout.flush()
    os._exit(0)  # the interpreter's teardown would cost containerd another ~5 ms


def _become_server(opts, listener, log_fd, start_options):
    """In the forked child: detach from start's caller (containerd reads start's output until every
    writer has closed it), then serve. Never returns."""
    code = 1
    try:
        os.setsid()
        null = os.open(os.devnull, os.O_RDWR)
        out = log_fd if log_fd >= 0 else null
        os.dup2(null, 0)
        os.dup2(out, 1)
        os.dup2(out, 2)
        for fd in {null, log_fd} - {-1, 0, 1, 2}:
            os.close(fd)
        code = cmd_serve(opts, listener=listener, start_options=start_options)
    except BaseException as e:
        try:
            os.write(2, f"containerd-shim-pyrunc-v2: serve: {type(e).__name__}: {e}\n".encode())
        except OSError:
            pass
    os._exit(code or 0)


def _start_options():
    """The task's options Any that containerd writes on start's stdin (nothing when it has none:
    stdin is then /dev/null), as bytes: the server decodes them (protobuf is its import, not
    start's). A terminal on stdin (started by hand) is not read."""
    try:
        if os.isatty(0):
            return b""
        data = os.read(0, START_OPTIONS_MAX + 1)
        chunk = data
        while chunk and len(data) <= START_OPTIONS_MAX:
            chunk = os.read(0, START_OPTIONS_MAX + 1 - len(data))
            data += chunk
    except OSError:
        return b""  # no stdin at all
    if len(data) > START_OPTIONS_MAX:
        raise UsageError(f"runtime options on stdin: larger than {START_OPTIONS_MAX} bytes")
    return data


def serve_flags(opts):
    """The server's flags, the same in both modes (what ps shows, what each mode execs the other with)."""
    flags = []
    for k in ("namespace", "id", "address", "publish-binary", "bundle", "socket"):
        if opts.get(k):
            flags += [f"-{k}", opts[k]]
    return flags + (["-debug"] if opts.get("debug") else [])


def _open_log_fifo(bundle):
    """containerd reads the shim's log from the fifo `log` in the bundle (when it opened one). -> fd or -1"""
    try:
        fd = os.open(os.path.join(bundle, "log"), os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        os.set_blocking(fd, True)
        return fd
    except OSError:
        return -1


def cmd_serve(opts, listener=None, start_options=b""):
    """The server: forked by start with its listener and the options start read, or exec'd by the
    lean mode with the handover state (-state-fd)."""
    import signal
    import socket as _s
    import threading
    from pyrunc_shim import handover, sys as shimsys
    from pyrunc_shim.activity import Activity
    from pyrunc_shim.events import Publisher
    from pyrunc_shim.reaper import Reaper
    from pyrunc_shim.service import SERVICE, TaskService
    from pyrunc_shim.ttrpc.server import Server

    state = handover.load(int(opts["state-fd"])) if opts.get("state-fd") else None
    shimsys.set_child_subreaper()  # kept across the execs of the lean mode; set again, harmless
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    if state is not None:
        listener = _s.socket(fileno=state["listener"])
    elif listener is None:
        raise UsageError("serve: started by start or by the lean mode only")
    else:
        listener = _s.socket(fileno=listener.detach())  # start's _socket: a full socket now
    debug = opts.get("debug")

    def log(msg):
        if debug:
            try:
                sys.stderr.write(f"pyrunc-shim[{os.getpid()}]: {msg}\n")
                sys.stderr.flush()
            except OSError:
                pass
    start_error = _join_shim_cgroup(start_options, log) if start_options else None
    activity = Activity()
    reaper = Reaper(activity, unclaimed=state["unclaimed"] if state else None)
    ns = opts.get("namespace", "default")
    pub = Publisher(ns, ttrpc_address=os.environ.get("TTRPC_ADDRESS", ""),
                    publish_binary=opts.get("publish-binary", ""), containerd_address=opts.get("address", ""),
                    log=log, reaper=reaper, activity=activity)
    server = Server(log=log, activity=activity)
    done = threading.Event()      # Shutdown asked: no more going lean
    stopped = threading.Event()   # the server has closed

    def shutdown():
        # the socket name goes first: containerd may start a shim for a container of the same id
        # at once, and must not find (and reuse) this one while it exits
        try:
            os.unlink(opts["socket"])
        except OSError:
            pass
        done.set()

        def finish():
            pub.flush(10)
            server.close()
        threading.Thread(target=finish, daemon=True).start()
    svc = TaskService(reaper, pub, namespace=ns, on_shutdown=shutdown, log=log, activity=activity,
                      start_error=start_error)
    server.register(SERVICE, svc.methods())
    if state is not None:
        server.adopt(state["conns"])
        svc.restore(state["service"], server)
        log(f"full mode again ({state.get('why', '?')}): {handover.describe(state)}")

    def accept():
        try:
            server.serve(listener)
        except Exception as e:
            log(f"accept: {type(e).__name__}: {e}")
        finally:
            stopped.set()
    threading.Thread(target=accept, name="accept", daemon=True).start()
    flags = serve_flags(opts)
    lean_after = float(os.environ.get("PYRUNC_SHIM_LEAN_AFTER") or LEAN_AFTER)
    while not stopped.is_set():
        left = activity.idle_left(lean_after)
        if stopped.wait(0.25 if left is None else max(left, 0.05)) or done.is_set():
            continue
        if activity.idle_left(lean_after) != 0:
            continue
        why = svc.lean_blocker()
        if why is None and activity.quiesce(lean_after, QUIESCE_TIMEOUT):
            try:
                why = _go_lean(svc, server, reaper, listener, flags, debug, done, log)
            except Exception as e:  # a failed attempt leaves the full mode serving, never stops it
                why = f"{type(e).__name__}: {e}"
        if why:
            log(f"not going lean: {why}")
        activity.thaw()  # not lean: try again after lean_after more seconds
    try:
        os.unlink(opts["socket"])
    except OSError:
        pass
    os._exit(0)


def _join_shim_cgroup(data, log):
    """The options' ShimCgroup (runc's shim moves itself there at start), joined before the server
    forks any runtime. -> the error (options it cannot decode, a cgroup it cannot join), which
    every Create then answers: start has printed the address already."""
    from pyrunc_shim import options, shim_cgroup
    from pyrunc_shim.errors import ShimError
    try:
        cgroup = options.from_start_stdin(data).get("ShimCgroup")
        if cgroup:
            shim_cgroup.join(os.getpid(), cgroup)
    except ShimError as e:
        log(f"start options: {e.message}")
        return e
    return None


def _go_lean(svc, server, reaper, listener, flags, debug, done, log):
    """Frozen and idle: unless something is waiting to be read (or reaped), exec the lean mode.
    -> why not (it returns only when it does not go)."""
    import select
    from pyrunc_shim import handover
    if done.is_set():
        return "shutting down"
    if handover.zombie_waiting():
        return "a child has exited"
    state = {"executable": sys.executable, "flags": flags, "debug": bool(debug), "listener": listener.fileno(),
             "conns": server.export(), "unclaimed": reaper.export(), "service": svc.export()}
    p = select.poll()
    for fd in handover.wake_fds(state):
        p.register(fd, select.POLLIN)
    if p.poll(0):
        return "input waiting"
    why = svc.lean_blocker()
    if why:
        return why
    log(f"going lean: {handover.describe(state)}")
    handover.exec_into(state, handover.lean_argv)  # returns only by raising OSError


def cmd_delete(opts):
    import json
    import signal
    import subprocess
    from pyrunc_shim.pb.containerd import shim_pb2
    from pyrunc_shim.events import timestamp
    from pyrunc_shim import sys as shimsys
    bundle = opts.get("bundle") or os.getcwd()
    cid = opts["id"]
    try:
        with open(os.path.join(bundle, "options.json")) as f:
            o = json.load(f)
    except (OSError, ValueError):
        o = {}
    from pyrunc_shim.errors import ShimError
    from pyrunc_shim.runtime import resolve_binary
    try:
        binary = resolve_binary(o.get("BinaryName"))
    except ShimError as e:  # no runtime, so no container it could have left: the rest still runs
        sys.stderr.write(f"containerd-shim-pyrunc-v2: delete: {e.message}\n")
        binary = None
    if binary:
        root = o.get("Root") or os.path.join(f"/run/containerd/{os.path.basename(binary)}",
                                             opts.get("namespace", "default"))
        argv = [binary, "--root", root, "--log", os.path.join(bundle, "log.json"), "--log-format", "json"]
        if o.get("SystemdCgroup"):
            argv.append("--systemd-cgroup")
        subprocess.run(argv + ["delete", "--force", cid], capture_output=True, cwd=bundle)
    rootfs = os.path.join(bundle, "rootfs")
    for _ in range(16):
        try:
            shimsys.umount(rootfs, shimsys.MNT_DETACH)
        except OSError:
            break
    resp = shim_pb2.DeleteResponse(pid=0, exit_status=128 + signal.SIGKILL, exited_at=timestamp(time.time()))
    sys.stdout.buffer.write(resp.SerializeToString())
    sys.stdout.flush()
    return 0


def main(argv=None):
    from pyrunc_shim.errors import ShimError
    argv = sys.argv[1:] if argv is None else argv
    try:
        opts, rest = parse(argv)
        if opts.get("v") or opts.get("version"):
            from pyrunc_shim import __version__
            print(f"containerd-shim-pyrunc-v2:\n  Version: {__version__}\n  Revision: \n  Go version: python{sys.version.split()[0]}")
            return 0
        if not rest:
            raise UsageError("expected a subcommand: start, delete")
        verb = rest[0]
        if verb in ("start", "delete", "serve") and not opts.get("id"):
            raise UsageError(f"{verb}: -id is required")
        if verb == "start":
            return cmd_start(opts)
        if verb == "delete":
            return cmd_delete(opts)
        if verb == "serve":
            return cmd_serve(opts)
        raise UsageError(f"unknown subcommand {verb!r}: expected start or delete")
    except UsageError as e:
        sys.stderr.write(f"containerd-shim-pyrunc-v2: {e}\n")
        return 2
    except ShimError as e:  # the options' errors, worded for containerd's users
        sys.stderr.write(f"containerd-shim-pyrunc-v2: {e.message}\n")
        return 1
    except Exception as e:
        sys.stderr.write(f"containerd-shim-pyrunc-v2: {type(e).__name__}: {e}\n")
        return 1


def entry():
    sys.exit(main())


if __name__ == "__main__":
    entry()
