"""OCI hooks: run one kind's entries in order, the state JSON on stdin.

Used by the runtime (prestart, createRuntime, poststart, poststop) and by container init
(createContainer before pivot_root, startContainer after it), so it must work with only what
init.preload() imported: os, select and fastjson, no subprocess module.
"""
import os
import select

from pyrunc import fastjson as json
from pyrunc.errors import PyruncError

KINDS = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop")
_OUTPUT_LIMIT = 64 * 1024
_POLL_MAX_MS = 2 ** 31 - 1


class HookError(PyruncError):
    def __init__(self, kind, index, hook, why, output=b""):
        text = f"error running {kind} hook #{index}: {hook.get('path')}: {why}"
        tail = output.decode(errors="replace").strip()
        if tail:
            text += f", output: {tail[-512:]}"
        super().__init__(text)
        self.kind = kind


def hook_state(state, status, pid):
    """The runtime-spec state document a hook reads on stdin."""
    return {"ociVersion": state.get("ociVersion", ""), "id": state["id"], "status": status, "pid": pid,
            "bundle": state["bundle"], "annotations": state.get("annotations") or {}}


def entries(config, kind):
    return ((config or {}).get("hooks") or {}).get(kind) or ()


def _environment(pairs):
    """KEY=VALUE strings to execve's mapping; the last of a repeated key wins (Go's dedupEnv)."""
    return dict(e.split("=", 1) if "=" in e else (e, "") for e in pairs)


def run_all(config, kind, state, warn=None, inherited=None):
    """Run every hook of `kind`; the first failure raises HookError, or with `warn` (poststop)
    is passed to warn(message) and the remaining hooks still run.

    A hook without `env` inherits, as runc's (an exec.Cmd with a nil Env): `inherited` (KEY=VALUE
    strings or a mapping; init passes the container process's environment, which runc's init runs with),
    or else this runtime's own environment. `"env": []` is an empty environment."""
    data = json.dumps(state).encode()
    if inherited is None:
        default_env = os.environ
    else:
        default_env = inherited if isinstance(inherited, dict) else _environment(inherited)
    for index, hook in enumerate(entries(config, kind)):
        try:
            run_one(kind, index, hook, data, default_env)
        except HookError as e:
            if warn is None:
                raise
            warn(str(e))


def run_one(kind, index, hook, data, default_env):
    path = hook["path"]
    argv = hook.get("args") or [path]
    env = default_env if hook.get("env") is None else _environment(hook["env"])
    timeout = hook.get("timeout")
    in_r, in_w = os.pipe()
    out_r, out_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        # The child of a fork of the runtime (or of init): whatever happens it must end here, never
        # unwind into the caller's code (its undo of a failed create would run twice).
        try:
            os.dup2(in_r, 0)
            os.dup2(out_w, 1)
            os.dup2(out_w, 2)
            os.closerange(3, 65536)  # hooks get stdio only, never our pipes or sockets
            os.execve(path, argv, env)
        except OSError as e:
            _child_error(f"exec: {(e.strerror or str(e)).lower()}")
        except BaseException as e:  # noqa: BLE001 - e.g. a string execve cannot take
            _child_error(f"exec: {e}")
        finally:
            os._exit(127)
    os.close(in_r)
    os.close(out_w)
    output = b""
    try:
        try:
            # A hook that never reads its stdin must not block us: write what the pipe takes.
            os.set_blocking(in_w, False)
            os.write(in_w, data)
        except OSError:
            pass
        os.close(in_w)
        in_w = None
        pidfd = os.pidfd_open(pid)
        try:
            import time
            deadline = None if timeout is None else time.monotonic() + timeout
            poller = select.poll()
            poller.register(out_r, select.POLLIN)
            poller.register(pidfd, select.POLLIN)
            exited = False
            while not exited:
                # poll() takes an int of milliseconds: a timeout of years waits in 24-day steps.
                wait_ms = None if deadline is None else min(
                    _POLL_MAX_MS, max(0, int((deadline - time.monotonic()) * 1000)))
                events = poller.poll(wait_ms)
                if not events and deadline is not None and time.monotonic() >= deadline:
                    os.kill(pid, 9)
                    os.waitpid(pid, 0)
                    pid = None
                    raise HookError(kind, index, hook, f"timeout after {timeout} seconds", output)
                for fd, _ in events:
                    if fd == pidfd:
                        exited = True
                    else:
                        chunk = os.read(out_r, 65536)
                        if chunk:
                            output = (output + chunk)[-_OUTPUT_LIMIT:]
                        else:
                            poller.unregister(out_r)
        finally:
            os.close(pidfd)
        os.set_blocking(out_r, False)
        try:
            output = (output + os.read(out_r, 65536))[-_OUTPUT_LIMIT:]
        except (BlockingIOError, OSError):
            pass
        _, status = os.waitpid(pid, 0)
        pid = None
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            why = f"exit status {code}" if code > 0 else f"killed by signal {-code}"
            raise HookError(kind, index, hook, why, output)
    finally:
        if pid is not None:
            try:
                os.kill(pid, 9)
                os.waitpid(pid, 0)
            except OSError:
                pass
        os.close(out_r)
        if in_w is not None:
            os.close(in_w)


def _child_error(message):
    try:
        os.write(2, message.encode(errors="replace"))
    except BaseException:  # noqa: BLE001 - nothing more to tell, and _exit follows
        pass
