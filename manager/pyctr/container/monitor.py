"""Starting a container's monitor: `pyrunc-shim` with conmon's command line, as podman starts
conmon. The monitor runs `RUNTIME create`, answers the pid on the sync pipe and then detaches (no
--sync): the container outlives this pyctr. Its exit command is `pyctr container cleanup ID` with
every store flag repeated, so cleanup finds the same store."""
import json
import os
import select
import subprocess

from pyctr.container.errors import ContainerError, NotFoundInImage

SYNC_TIMEOUT = 120


def exit_code_for(message):
    """Docker's mapping of a runtime's start error to the status of `run` (dockerd: 126/127)."""
    low = message.lower()
    if "executable file not found" in low or "no such file or directory" in low:
        return 127
    if "permission denied" in low or "is a directory" in low or "not a directory" in low:
        return 126
    return 125


def argv(ctx, rec, runtime_binary, short_logs=False):
    cid = rec["Id"]
    d = ctx.containers.dir(cid)
    host, cfg = rec["HostConfig"], rec["Config"]
    a = [ctx.sibling("pyrunc-shim"), "--api-version", "1", "-c", cid, "-u", cid[:12], "-n", rec["Name"],
         "-r", runtime_binary, "--runtime-arg", "--root", "--runtime-arg", ctx.runtime_root,
         "-b", os.path.join(d, "bundle"), "-p", os.path.join(d, "pidfile"),
         "-P", os.path.join(d, "monitor.pid"), "--exit-dir", os.path.join(d, "exits"), "-0", d,
         "--socket-dir-path", ctx.socket_dir,
         "--exit-command", ctx.pyctr_binary]
    for arg in ctx.global_args() + ["container", "cleanup", cid]:
        a += ["--exit-command-arg", arg]
    log = host.get("LogConfig") or {}
    if log.get("Type") == "none":
        a += ["-l", "none"]
    else:
        a += ["-l", "json-file:" + rec["LogPath"]]
        opts = log.get("Config") or {}
        if opts.get("max-size"):
            from pyctr.container.options import parse_bytes
            a += ["--log-size-max", str(parse_bytes(opts["max-size"], "max-size"))]
            a += ["--log-max-files", opts.get("max-file") or "1"]
    if cfg.get("Tty"):
        a.append("-t")
    if cfg.get("OpenStdin"):
        a.append("-i")
    if rec.get("DetachKeys") is not None:
        a += ["--detach-keys", rec["DetachKeys"]]
    return a


def launch(ctx, rec, runtime_binary, keep_fds=()):
    """Start the monitor; returns (container pid, monitor pid). ContainerError (exit code mapped
    as Docker's) if the runtime could not create the container. keep_fds: what the monitor holds
    as long as it lives (the published ports' sockets)."""
    d = ctx.containers.dir(rec["Id"])
    os.makedirs(os.path.join(d, "exits"), exist_ok=True)
    for stale in ("exit", "monitor.pid", "pidfile", os.path.join("exits", rec["Id"])):
        try:
            os.unlink(os.path.join(d, stale))
        except FileNotFoundError:
            pass
    r, w = os.pipe()
    env = dict(os.environ, _OCI_SYNCPIPE=str(w))
    env.pop("_OCI_STARTPIPE", None)
    try:
        first = subprocess.Popen(argv(ctx, rec, runtime_binary), env=env, pass_fds=(w,) + tuple(keep_fds), stdin=subprocess.DEVNULL,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    except OSError as e:
        os.close(r)
        os.close(w)
        raise ContainerError(f"cannot start the monitor: {e.strerror}") from None
    os.close(w)
    try:
        data = b""
        while not data.endswith(b"\n"):
            ready, _, _ = select.select([r], [], [], SYNC_TIMEOUT)
            if not ready:
                raise ContainerError(f"the monitor did not answer in {SYNC_TIMEOUT}s")
            chunk = os.read(r, 4096)
            if not chunk:
                break
            data += chunk
    finally:
        os.close(r)
        err = first.stderr.read().decode(errors="replace") if first.wait() else ""
        first.stderr.close()
    try:
        msg = json.loads(data.decode().splitlines()[0]) if data.strip() else {}
    except ValueError:
        msg = {}
    pid = msg.get("data", -1) if isinstance(msg, dict) else -1
    if not isinstance(pid, int) or pid <= 0:
        text = (msg.get("message") if isinstance(msg, dict) else None) or err.strip() or "the monitor failed"
        code = exit_code_for(text)
        if code != 125:
            raise NotFoundInImage(_oci_wording(text), code)
        raise ContainerError(_oci_wording(text))
    try:
        with open(os.path.join(d, "monitor.pid")) as f:
            monitor_pid = int(f.read())
    except (OSError, ValueError):
        monitor_pid = 0
    return pid, monitor_pid


def _oci_wording(text):
    import re
    text = text.strip()
    m = re.search(r'msg="((?:[^"\\]|\\.)*)"', text)  # the runtime's logrus line: its message
    if m:
        text = re.sub(r'\\(.)', r'\1', m.group(1))
    return text if text.startswith("OCI runtime") else f"OCI runtime create failed: {text}"
