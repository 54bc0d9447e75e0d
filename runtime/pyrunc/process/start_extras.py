"""What `start` does beyond releasing exec.fifo: startContainer's verdict, poststart hooks, and
forwarding the container's sd_notify READY to the caller's $NOTIFY_SOCKET (runc's behaviour)."""
import os
import select

from pyrunc.process import hooks


def start_container_result(fifo_fd, pidfd, state):
    """With startContainer hooks, init keeps exec.fifo open while they run: EOF (execve closed it)
    is success, anything written is the hook's error. Returns the error text or None."""
    if not hooks.entries(state.get("config"), "startContainer"):
        return None
    message = b""
    poller = select.poll()
    poller.register(fifo_fd, select.POLLIN)
    while True:
        poller.poll()
        chunk = os.read(fifo_fd, 4096)
        if not chunk:
            break
        message += chunk
    return message.decode(errors="replace") or None


def _undo_after_failure(store, container_id, state):
    from pyrunc.lifecycle.container import destroy, kill_everything
    kill_everything(state)
    destroy(store, container_id, state)


def after_start(store, container_id, state, hook_error, notify):
    from pyrunc.errors import PyruncError
    if hook_error:
        if notify is not None:
            notify.close()
        _undo_after_failure(store, container_id, state)
        raise PyruncError(hook_error)
    try:
        hooks.run_all(state.get("config"), "poststart", hooks.hook_state(state, "running", state["pid"]))
    except PyruncError:
        if notify is not None:
            notify.close()
        # runtime-spec 1.3: a failing poststart hook fails `start`, stops and deletes the container.
        _undo_after_failure(store, container_id, state)
        raise
    if notify is not None:
        notify.forward(state)


class NotifyListener:
    def __init__(self, sock, host_socket):
        self.sock, self.host_socket = sock, host_socket

    def close(self):
        self.sock.close()

    def forward(self, state):
        """Wait for READY=... from the container (or its end), pass it on with MAINPID."""
        from pyrunc.state import status as st
        try:
            pidfd = os.pidfd_open(state["pid"])
        except ProcessLookupError:
            self.close()
            return
        try:
            poller = select.poll()
            poller.register(self.sock.fileno(), select.POLLIN)
            poller.register(pidfd, select.POLLIN)
            while True:
                events = dict(poller.poll())
                if self.sock.fileno() in events:
                    data = self.sock.recv(4096)
                    for line in data.split(b"\n"):
                        if line.startswith(b"READY="):
                            self._send(line + b"\n" + f"MAINPID={state['pid']}\n".encode())
                            return
                if pidfd in events or not st.is_alive(state):
                    return
        finally:
            os.close(pidfd)
            self.close()

    def _send(self, payload):
        import _socket
        client = _socket.socket(_socket.AF_UNIX, _socket.SOCK_DGRAM | _socket.SOCK_CLOEXEC)
        try:
            address = self.host_socket
            if address.startswith("@"):
                address = "\0" + address[1:]
            client.sendto(payload, address)
        except OSError as e:
            from pyrunc.log import logger
            logger.warning(f"forwarding READY to NOTIFY_SOCKET {self.host_socket}: {e}")
        finally:
            client.close()


def notify_listener(state_dir):
    """Bind the container's notify socket before the process runs, if create prepared for one."""
    host = os.environ.get("NOTIFY_SOCKET")
    notify_dir = os.path.join(state_dir, "notify")
    if not host or not os.path.isdir(notify_dir):
        return None
    import _socket
    path = os.path.join(notify_dir, "notify.sock")
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_DGRAM | _socket.SOCK_CLOEXEC)
    try:
        sock.bind(path)
        os.chmod(path, 0o777)  # a non-root container user must be able to send
    except OSError as e:
        sock.close()
        from pyrunc.errors import StepError
        raise StepError("bind notify socket", path, e) from None
    return NotifyListener(sock, host)
