"""The closed set of messages between the runtime and its children, one JSON object per line.

  intermediate -> runtime: {"type": "init_pid", "pid": N}     (pid as the runtime sees it)
  init -> runtime:         {"type": "hooks"}                  (namespaces and mounts exist, before pivot_root:
                                                               run prestart + createRuntime, then write "1"
                                                               on the hooks pipe)
  init -> runtime:         {"type": "ready"}                  (all of create applied; waiting on exec.fifo)
  intermediate -> runtime: {"type": "userns"}                 (unshared CLONE_NEWUSER: write my id maps,
                                                              then send "2" on the go pipe)
  init -> runtime:         {"type": "seccomp_fd", "listener_fd": N}  (the notify listener, init's fd N)
  any child -> runtime:    {"type": "error", "message": "...", "exec_not_found": "name"?}
"""
from pyrunc import fastjson as json
import os

INIT_PID, HOOKS, READY, ERROR, USERNS, SECCOMP_FD = "init_pid", "hooks", "ready", "error", "userns", "seccomp_fd"
_KINDS = (INIT_PID, HOOKS, READY, ERROR, USERNS, SECCOMP_FD)


def send(fd, kind, **fields):
    assert kind in _KINDS
    fields["type"] = kind
    os.write(fd, json.dumps(fields).encode() + b"\n")


class Receiver:
    def __init__(self, fd):
        self.fd = fd
        self.buffer = b""

    def next(self):
        """The next message, or None at EOF (every writer gone)."""
        while b"\n" not in self.buffer:
            chunk = os.read(self.fd, 65536)
            if not chunk:
                return None
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        message = json.loads(line)
        if message.get("type") not in _KINDS:
            raise ValueError(f"unexpected message from child: {message!r}")
        return message
