"""The handover between the containerd-mode shim's two programs, one process: the full mode
(`python -m pyrunc_shim.containerd_main ... serve`: ttrpc, protobuf, threads) execs the lean mode
(`python -S .../pyrunc_shim/lean.py ... lean`) when it has been idle, and the lean mode execs the
full mode back when something needs it. execve keeps the pid (so the shim stays the parent and child
subreaper of the container: PR_SET_CHILD_SUBREAPER survives it) and the fd table: exactly the fds
the state names (`fds`) are made inheritable for the exec, every other one is close-on-exec.

The state is a dict of ints, floats, strings, bytes, lists and dicts in marshal's format, in a memfd
whose number the new program gets as `-state-fd N`:
  - marshal is built into the interpreter: the lean mode reads it without importing anything (json
    would pull re and enum into it), bytes (pending output) travel as they are, and both sides are
    always the same interpreter binary (the full mode's sys.executable), so the format matches;
  - a memfd has no size limit (a pipe would block its writer past 64 KiB, and pending output alone
    can be that much), leaves no file to remove or to find stale after a crash, and is gone with
    the process.
The state (written by containerd_main._go_lean and by the lean mode, read by both):
  executable, flags, debug   the interpreter and the server's flags, to exec either mode with
  listener, conns            the ttrpc listening socket and the accepted client connections
  unclaimed                  {pid: (exit code, time)} reaped and not claimed yet (reaper.py)
  service                    TaskService.export(): namespace, and "containers", each with its id,
                             bundle, runtime, mounts, OOM watch ({"v1": eventfd, "dir": cgroup} or
                             {"v2": memory.events, "last": n}) and procs (init first): each
                             Process.export() (pid, status, exit, "waits": the [connection fd,
                             stream id] of each Wait still owed) with its "io": console, stdin_w,
                             term_err fds; "out": [stream, src, dst, pending, owns_dst] per output
                             pump; "in": the stdin pump or None (pump.py)
  fds                        every fd above, computed by state_fds() just before the exec
  why                        (to the full mode) what woke the lean mode, for the debug log

Imports os and marshal alone: the lean mode loads it."""
import marshal
import os

VERSION = 2  # 2: several containers (a pod's, grouped by start)
LEAN_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "lean.py")
STATE_FLAG = "-state-fd"


class BadState(Exception):
    pass


def lean_argv(state, fd):
    """The lean program's command line: the full mode's flags (so ps and pgrep show the same
    -namespace/-id/-address), then the state fd and the verb `lean`."""
    return [state["executable"], "-S", LEAN_SCRIPT] + state["flags"] + [STATE_FLAG, str(fd), "lean"]


def full_argv(state, fd):
    return [state["executable"], "-m", "pyrunc_shim.containerd_main"] + state["flags"] + \
        [STATE_FLAG, str(fd), "serve"]


def zombie_waiting():
    """A child has exited and is not reaped yet (nothing is reaped by asking): the full mode does
    not go lean then, and the lean mode goes back for it."""
    try:
        return os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return False


def procs(state):
    """Every process of every container in the state."""
    return [p for c in state["service"]["containers"] for p in c["procs"]]


def ooms(state):
    """The containers' OOM watches (those that have one)."""
    return [c["oom"] for c in state["service"]["containers"] if c["oom"]]


def wake_fds(state):
    """The fds whose input only the full mode handles: the listener, the connections, OOM eventfds."""
    return [state["listener"]] + state["conns"] + [o["v1"] for o in ooms(state) if "v1" in o]


def state_fds(state):
    """Every fd the state names (the ones to keep open across the exec)."""
    fds = wake_fds(state)
    for p in procs(state):
        io = p["io"]
        fds += [io["console"], io["stdin_w"], io["term_err"]]
        for _stream, src, dst, _pending, _owns in io["out"]:
            fds += [src, dst]
        if io["in"] is not None:
            fds += io["in"][:2]
    return sorted({f for f in fds if f >= 0})


def describe(state):
    """A line for the debug log: the connections, and each pump with its pending bytes."""
    pumps = []
    for p in procs(state):
        io = p["io"]
        for stream, src, dst, pending, _owns in io["out"]:
            pumps.append(f"{p['exec_id'] or p['cid']}.{stream} {src}->{dst} +{len(pending)}")
        if io["in"] is not None:
            src, dst, pending, _owns = io["in"]
            pumps.append(f"{p['exec_id'] or p['cid']}.stdin {src}->{dst} +{len(pending)}")
    return f"listener {state['listener']}, conns {state['conns']}, pumps [{', '.join(pumps)}]"


def exec_into(state, argv_for):
    """execve the other mode with `state`; returns only when the exec failed (OSError raised, every
    fd back to close-on-exec)."""
    state["v"] = VERSION
    state["fds"] = fds = state_fds(state)
    data = marshal.dumps(state)
    fd = os.memfd_create("pyrunc-shim-state", 0)  # not close-on-exec: the new program reads it
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        for f in fds:
            os.set_inheritable(f, True)
        os.execv(state["executable"], argv_for(state, fd))
    except BaseException:
        for f in fds:
            try:
                os.set_inheritable(f, False)
            except OSError:
                pass
        os.close(fd)
        raise


def load(fd):
    """The state the previous program left in memfd `fd` (closed here); its fds close-on-exec again."""
    try:
        size = os.fstat(fd).st_size
        chunks, off = [], 0
        while off < size:
            b = os.pread(fd, size - off, off)
            if not b:
                break
            chunks.append(b)
            off += len(b)
    finally:
        os.close(fd)
    try:
        state = marshal.loads(b"".join(chunks))
    except (EOFError, ValueError, TypeError) as e:
        raise BadState(f"handover state: {e}") from None
    if isinstance(state, dict) and state.get("v") == 1:
        state = _from_v1(state)
    if not isinstance(state, dict) or state.get("v") != VERSION:
        raise BadState(f"handover state: version {state.get('v') if isinstance(state, dict) else '?'}, "
                       f"expected {VERSION}")
    for f in state["fds"]:
        os.set_inheritable(f, False)
    return state


def _from_v1(state):
    """A lean shim of the version before grouping (one container) woken into this one, after an
    upgrade in place: its container becomes the first of "containers"."""
    svc = state["service"]
    containers = []
    if svc.get("init") and not svc.get("init_deleted") and svc["procs"]:
        containers.append({"id": svc["procs"][0]["cid"], "bundle": svc["bundle"], "mounted": svc["mounted"],
                           "io_owner": svc.get("io_owner") or [0, 0], "runtime": svc["runtime"],
                           "kill_all_on_exit": False, "procs": svc["procs"], "oom": svc["oom"]})
    state["service"] = {"namespace": svc["namespace"], "default_binary": svc["default_binary"],
                        "runtime_root": svc["runtime_root"], "containers": containers}
    state["v"] = VERSION
    return state


def state_fd(argv):
    """-state-fd N from a command line, or None."""
    for i, a in enumerate(argv):
        if a == STATE_FLAG and i + 1 < len(argv):
            return int(argv[i + 1])
        if a.startswith(STATE_FLAG + "="):
            return int(a.split("=", 1)[1])
    return None
