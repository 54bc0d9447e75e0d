"""Run a function in a child process with its own mount namespace: whatever it mounts (a stopped
container's overlay, its volumes) vanishes when it exits, even if pyctr is SIGKILLed meanwhile.
The child inherits stdin/stdout (`cp -` streams a tar through it); its error comes back as text."""
import os
import sys


def run_private(fn):
    """fn() in a private mount namespace; returns its int result (0..255) or raises its
    PyctrError's message as a PyctrError."""
    from pyctr.errors import PyctrError
    from pyrunc.sys import calls, consts
    r, w = os.pipe2(os.O_CLOEXEC)
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.close(r)
            calls.unshare(consts.CLONE_NEWNS)
            calls.mount("", "/", "", consts.MS_REC | consts.MS_PRIVATE, None)
            code = fn() or 0
            sys.stdout.flush()
        except PyctrError as e:
            os.write(w, str(e).encode(errors="replace")[:65536])
        except BrokenPipeError:
            code = 1
        except OSError as e:
            os.write(w, f"{e.strerror or e}".encode(errors="replace")[:65536])
        except BaseException as e:  # noqa: BLE001 - the child must never unwind into the caller
            os.write(w, f"internal error: {e.__class__.__name__}: {e}".encode(errors="replace")[:65536])
        finally:
            os._exit(code if isinstance(code, int) and 0 <= code < 256 else 1)
    os.close(w)
    chunks = []
    while True:
        b = os.read(r, 65536)
        if not b:
            break
        chunks.append(b)
    os.close(r)
    _, status = os.waitpid(pid, 0)
    message = b"".join(chunks).decode(errors="replace")
    if message:
        raise PyctrError(message)
    if os.WIFSIGNALED(status):
        raise PyctrError(f"the helper process was killed by signal {os.WTERMSIG(status)}")
    return os.WEXITSTATUS(status)
