"""SCMP_ACT_NOTIFY: hand the listener fd to the agent at linux.seccomp.listenerPath.

runtime-spec (config-linux.md, "The Container Process State"): one message on the UNIX socket,
the container process state as JSON with the listener fd attached via SCM_RIGHTS; "fds" names the
attached fds in order.

In runc's order (procSeccomp / procSeccompDone): the process that loaded the filter (init, or an
exec'd process) names its listener fd to the runtime at once and waits; the runtime copies it
(pidfd_getfd), sends it to the agent and answers; only then does the process go on. A notifying
rule on a call the process itself still makes (openat of /etc/passwd, of exec.fifo) is then
answered by the agent instead of blocking the process for ever.
"""
import os

from pyrunc.errors import StepError


def fetch_listener(pid, fd):
    """Duplicate init's listener fd into the runtime (init is blocked on exec.fifo meanwhile)."""
    from pyrunc.sys.calls import pidfd_getfd
    try:
        pidfd = os.pidfd_open(pid)
        try:
            return pidfd_getfd(pidfd, fd)
        finally:
            os.close(pidfd)
    except OSError as e:
        raise StepError("get seccomp listener fd from container init", str(pid), e) from None


def process_state(seccomp, state, pid, oci_version):
    from pyrunc import fastjson as json
    message = {"ociVersion": oci_version, "fds": ["seccompFd"], "pid": pid, "state": state}
    if seccomp.get("listenerMetadata"):
        message["metadata"] = seccomp["listenerMetadata"]
    return json.dumps(message).encode()


# How long the agent may take to take the message (a full socket buffer); runc's Go dial never
# waits for an accept either.
SEND_TIMEOUT = 10.0


def send(listener_path, payload, listener_fd, timeout=SEND_TIMEOUT):
    """With a timeout the connect is non-blocking: a UNIX socket whose agent does not accept and
    whose backlog is full answers EAGAIN at once, where a blocking connect would wait for ever."""
    import socket
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            try:
                sock.connect(listener_path)
            except BlockingIOError:
                raise StepError("connect to seccomp agent", listener_path,
                                "it does not accept connections (its backlog is full)") from None
            socket.send_fds(sock, [payload], [listener_fd])
    except socket.timeout:
        raise StepError("send seccomp listener fd to", listener_path,
                        f"the agent took no message within {timeout:g}s") from None
    except OSError as e:
        raise StepError("send seccomp listener fd to", listener_path, e) from None


def wanted(seccomp):
    """Whether this linux.seccomp notifies (what compile_plan's uses_notify says, without compiling)."""
    if not seccomp:
        return False
    return seccomp.get("defaultAction") == "SCMP_ACT_NOTIFY" or any(
        (rule or {}).get("action") == "SCMP_ACT_NOTIFY" for rule in seccomp.get("syscalls") or ())


def hand_over(sync_fd, ack, listener_fd):
    """In the process that just loaded the filter: name the listener to the runtime, wait until the
    agent has it, close ours (the container never holds it). ack: the (read, write) pipe the runtime
    answers on; the write end is the runtime's."""
    from pyrunc.process import sync
    ack_read, ack_write = ack
    os.close(ack_write)
    try:
        sync.send(sync_fd, sync.SECCOMP_FD, listener_fd=listener_fd)
        answer = os.read(ack_read, 1)
    finally:
        os.close(ack_read)
        os.close(listener_fd)
    if answer != b"1":  # the runtime failed and reports why; this process is killed meanwhile
        raise StepError("seccomp notify", None, "the runtime did not hand the listener to the agent")


def send_listener(seccomp, state, status, pid, fd_pid, fd, ack_fd):
    """The runtime's side: copy fd of process fd_pid and send it to the agent with the container's
    state (status "creating" from create, "running" from exec; pid is the container's init), then
    let that process go on (ack_fd)."""
    listener = fetch_listener(fd_pid, fd)
    try:
        public = {"ociVersion": state.get("ociVersion", ""), "id": state["id"], "status": status,
                  "pid": pid, "bundle": state["bundle"], "annotations": state.get("annotations") or {}}
        send(seccomp["listenerPath"], process_state(seccomp, public, fd_pid, public["ociVersion"]), listener)
    finally:
        os.close(listener)
    os.write(ack_fd, b"1")
