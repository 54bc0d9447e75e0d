"""Run a function in a forked child (a private playground for unshare, mounts, sethostname) and
bring its return value back over a pipe. The child always leaves with os._exit and is always reaped."""
import os
import pickle
import select
import signal
import traceback


def run_in_child(fn, *args, timeout=10.0):
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        code = 0
        try:
            os.close(r)
            try:
                payload = ("ok", fn(*args))
            except BaseException:
                payload = ("error", traceback.format_exc())
            try:
                data = pickle.dumps(payload)
            except Exception:
                data = pickle.dumps(("error", "unpicklable result: " + repr(payload)))
            view = memoryview(data)
            while view:
                view = view[os.write(w, view):]
        except BaseException:
            code = 70
        finally:
            os._exit(code)
    os.close(w)
    chunks = []
    try:
        while True:
            ready, _, _ = select.select([r], [], [], timeout)
            if not ready:
                os.kill(pid, signal.SIGKILL)
                raise AssertionError(f"child {pid} timed out after {timeout}s")
            chunk = os.read(r, 65536)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(r)
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, f"child exit status {status:#x}"
    kind, value = pickle.loads(b"".join(chunks))
    if kind == "error":
        raise AssertionError("in the forked child:\n" + value)
    return value
