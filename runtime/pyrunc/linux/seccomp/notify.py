"""SCMP_ACT_NOTIFY: hand the listener fd to the agent at linux.seccomp.listenerPath.

runtime-spec (config-linux.md, "The Container Process State"): one message on the UNIX socket,
the container process state as JSON with the listener fd attached via SCM_RIGHTS; "fds" names the
attached fds in order.
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


def send_listener(seccomp, state, pid, init_fd=None):
    """create's (and exec's) step: give the agent the listener of the process `pid`.

    state: the container's state as `pyrunc state` would show it; its status is "creating" here.
    """
    if init_fd is None:
        raise StepError("seccomp notify", None, "no listener fd reported by container init")
    listener = fetch_listener(pid, init_fd)
    try:
        public = {"ociVersion": state.get("ociVersion", ""), "id": state["id"], "status": "creating",
                  "pid": pid, "bundle": state["bundle"], "annotations": state.get("annotations") or {}}
        send(seccomp["listenerPath"], process_state(seccomp, public, pid, public["ociVersion"]), listener)
    finally:
        os.close(listener)
