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


def send(listener_path, payload, listener_fd):
    import socket
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.connect(listener_path)
            socket.send_fds(sock, [payload], [listener_fd])
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
