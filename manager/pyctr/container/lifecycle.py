"""Create, start, stop, kill, remove and clean up containers; every change under the container's
lock (and the store's for names), so any number of pyctr processes may act at once.

A start mounts the rootfs, writes config.json, starts the monitor (monitor.py), then `RUNTIME
start`; the monitor's exit command runs `pyctr container cleanup ID` (cleanup() here): unmount,
`RUNTIME delete`, then --rm or the restart policy. Any command that finds a container exited but
not cleaned up (the monitor or cleanup was killed) cleans it up itself (settle())."""
import json
import os
import shutil
import signal
import time

from pyctr.container import events, monitor, rootfs, state
from pyctr.container import volumes
from pyctr.container import volumes as _volumes_store  # remove()'s parameter is named volumes
from pyctr.container.errors import CommandError, ContainerError, NoSuchContainer

STOP_TIMEOUT = 10
BACKOFF_START, BACKOFF_MAX, BACKOFF_RESET = 0.1, 60.0, 10.0


def now_rfc3339(t=None):
    t = time.time() if t is None else t
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e9):09d}Z"


# --- create -----------------------------------------------------------------------------------------
def create(ctx, args, command, adjust=None):
    """adjust(config, host), if given, edits what the flags made before anything is written (the
    API's fields that have no flag form)."""
    from pyctr.container import names, options
    from pyctr.container.errors import UnknownImage
    from pyctr.errors import ImageNotFound
    images = ctx.images
    try:
        image_id = images.resolve(args.image)
    except ImageNotFound:
        raise UnknownImage(args.image) from None
    image_cfg = images.config(image_id)
    args.command = command
    config, host = options.build(args, args.image, image_id, image_cfg.get("config") or {})
    if adjust:
        adjust(config, host)
    cid = names.new_id()
    config["Hostname"] = config["Hostname"] or cid[:12]
    from pyctr.network import attach
    networks = attach.endpoints(ctx, host, args.network_alias)
    cs = ctx.containers
    d = cs.dir(cid)
    rec = {"Id": cid, "Created": now_rfc3339(), "Name": "", "Image": image_id, "Config": config,
           "HostConfig": host, "Mounts": [], "RestartCount": 0, "ManuallyStopped": False,
           "LogPath": os.path.join(d, f"{cid}-json.log"), "Run": None, "Driver": "overlay2",
           "Platform": image_cfg.get("os", "linux"), "NetworkSettings": {"Networks": networks, "Ports": {}}}
    with cs.lock:
        if args.name:
            cs.reserve_name(args.name, cid)
            rec["Name"] = args.name
        try:
            os.makedirs(os.path.join(d, "bundle"), mode=0o700)
            rec["Mounts"] = _volumes(ctx, rec, image_cfg.get("config") or {})
            if not args.name:
                rec["Name"] = cs.auto_name(cid)
            with images:
                rec["MountId"] = rootfs.create_layer(images, image_id, cid, os.path.join(d, "bundle", "rootfs"))
            volumes.copy_up(ctx, rec)
            cs.save(rec)
        except BaseException:
            if rec["Name"]:
                cs.release_name(rec["Name"], cid)
            with images:
                rootfs.remove_layer(images, cid)
            shutil.rmtree(d, ignore_errors=True)
            volumes.remove_anonymous(ctx, rec)
            raise
    events.emit(ctx, "create", rec)
    return rec


def _volumes(ctx, rec, image_cfg):
    """Binds as given (-v creates a missing source); volumes named or anonymous (-v /dst and the
    image's VOLUMEs) from the volume store (container/volumes.py)."""
    out = rec["Mounts"] = []   # filled as it goes: a failed create removes the volumes it made
    dests = {m["Destination"] for m in rec["HostConfig"]["Mounts"]} | set(rec["HostConfig"].get("Tmpfs") or {})
    wanted = list(rec["HostConfig"]["Mounts"])
    for v in sorted(image_cfg.get("Volumes") or {}):
        dst = os.path.normpath("/" + v.lstrip("/"))  # normpath keeps a leading "//"
        if dst not in dests:
            wanted.append({"Type": "volume", "Source": "", "Destination": dst, "RW": True, "Mode": "",
                           "Propagation": "", "NoCopy": False, "CreateSource": True})
    for m in wanted:
        m = dict(m)
        if m["Type"] == "bind":
            if not os.path.exists(m["Source"]):
                if not m.get("CreateSource"):
                    raise ContainerError(f"invalid mount config for type \"bind\": bind source path does not "
                                         f"exist: {m['Source']}")
                os.makedirs(m["Source"], mode=0o755, exist_ok=True)
        elif m["Type"] == "volume":
            volumes.attach(ctx, m)   # named (created if missing) or anonymous, in the volume store
        out.append(m)
    return out


# --- start ------------------------------------------------------------------------------------------
def start(ctx, cid, before_start=None):
    """Start (or leave running) the container; before_start(rec) runs once the runtime created it,
    before its process runs (the attach of a foreground `run`)."""
    cs = ctx.containers
    with cs.container_lock(cid):
        rec = cs.load(cid)
        rt = ctx.runtime(rec)
        st = state.derive(cs, rec, rt)
        if st.status in ("running", "restarting"):
            return rec, False
        if st.status == "paused":
            raise CommandError("cannot start a paused container, try unpause instead")
        settle(ctx, rec, rt)  # a previous run's exit recorded (and its leftovers freed) first
        try:
            _start(ctx, rec, rt, before_start)
        except BaseException as e:
            release(ctx, rec, rt)
            rec["Run"] = None
            rec["Error"] = str(e)
            if isinstance(e, ContainerError):
                rec["ExitCode"] = e.exit_code if e.exit_code in (126, 127) else 128
                rec["FinishedAt"] = now_rfc3339()
            cs.save(rec)
            raise
        return rec, True


def _start(ctx, rec, rt, before_start):
    from pyctr.container import oci
    cs = ctx.containers
    d = cs.dir(rec["Id"])
    from pyctr.network import attach
    volumes.mount_all(ctx, rec)
    target = rootfs.mount(ctx.images, rec["Id"])
    holder = attach.up(ctx, rec)   # netns, CNI ADD, held host ports, /etc files; release() undoes it
    try:
        spec = oci.build(rec, target, d, lambda ref: _running_pid(ctx, ref), attach.peers(ctx, rec))
        tmp = os.path.join(d, "bundle", "config.json.tmp")
        with open(tmp, "w") as f:
            json.dump(spec, f)
        os.rename(tmp, os.path.join(d, "bundle", "config.json"))
        os.makedirs(ctx.runtime_root, mode=0o700, exist_ok=True)
        rec.pop("Error", None)
        pid, monitor_pid = monitor.launch(ctx, rec, rt.binary, keep_fds=holder.fds())
    finally:
        holder.close()   # the monitor holds the host ports from here (a failed start frees them now)
    rec["Run"] = {"Pid": pid, "PidStart": state.proc_start(pid), "MonitorPid": monitor_pid,
                  "MonitorStart": state.proc_start(monitor_pid), "BootId": state.boot_id(),
                  "StartedAt": now_rfc3339(), "StartedAtEpoch": time.time()}
    rec["ManuallyStopped"] = False
    rec.pop("Restarting", None)
    ctx.containers.save(rec)  # from here a killed pyctr leaves a container the next command sees
    if before_start:
        before_start(rec)
    cp = rt.run("start", rec["Id"])
    if cp.returncode != 0:
        text = cp.stderr.strip().splitlines()[-1:] or [f"exit status {cp.returncode}"]
        raise ContainerError(f"OCI runtime start failed: {text[0]}")
    events.emit(ctx, "start", rec)


def _running_pid(ctx, ref):
    cs = ctx.containers
    rec = cs.load(cs.lookup(ref))
    st = state.derive(cs, rec, ctx.runtime(rec))
    if st.status not in ("running", "paused") or not st.pid:
        raise ContainerError(f"cannot join network of a non running container: {ref}")
    return st.pid


def release(ctx, rec, rt):
    """What a container holds only while it runs: the runtime's container (and so its cgroup),
    the monitor, the rootfs mount. Idempotent; called with the container lock held."""
    run = rec.get("Run") or {}
    if state.alive(run.get("MonitorPid"), run.get("MonitorStart")):
        os.kill(run["MonitorPid"], signal.SIGKILL)  # its container goes with the runtime delete below
    if os.path.exists(os.path.join(rt.root, rec["Id"])):  # runc-style runtimes keep <root>/<id>
        rt.delete(rec["Id"])
    link = os.path.join(ctx.socket_dir, rec["Id"][:12])
    if os.path.islink(link):  # the monitor removes it at its exit; not when it was killed
        os.unlink(link)
    m = ctx.images.layerdb.get_mount(rootfs.mount_name(rec["Id"]))
    if m:
        rootfs.unmount(m["target"])
    from pyctr.network import sandbox
    sandbox.teardown(ctx, rec)   # CNI DEL with the cached ADD, the netns removed


# --- stop, kill -------------------------------------------------------------------------------------
def wait_exit(ctx, rec, rt, timeout):
    """Wait until the container is no longer running; True if it stopped in time."""
    deadline = None if timeout is None or timeout < 0 else time.monotonic() + timeout
    delay = 0.01
    while True:
        st = state.derive(ctx.containers, rec, rt)
        if not st.running or st.status == "restarting":
            return True
        if deadline is not None and time.monotonic() >= deadline:
            return False
        time.sleep(delay)
        delay = min(delay * 2, 0.1)


def stop(ctx, cid, timeout=None, sig=None):
    from pyctr.container.options import signal_number
    cs = ctx.containers
    with cs.container_lock(cid):
        rec = cs.load(cid)
        rt = ctx.runtime(rec)
        _cancel_restart(ctx, rec)
        st = state.derive(cs, rec, rt)
        if not st.running:
            return rec
        if timeout is None:
            timeout = rec["Config"].get("StopTimeout", STOP_TIMEOUT)
        signum = signal_number(sig or rec["Config"].get("StopSignal") or "SIGTERM")
        rec["ManuallyStopped"] = True
        cs.save(rec)
        if st.status == "paused":
            rt.run("resume", cid)
        events.emit(ctx, "kill", rec, signal=signum)
        rt.kill(cid, signum)
        if not wait_exit(ctx, rec, rt, timeout):
            rt.kill(cid, signal.SIGKILL, all_=True)
            if not wait_exit(ctx, rec, rt, 30):
                raise CommandError(f"cannot stop container {cid[:12]}: it did not exit after SIGKILL")
        settle(ctx, rec, rt)
    events.emit(ctx, "stop", rec)
    return rec


def kill(ctx, cid, sig="KILL"):
    from pyctr.container.options import signal_number
    cs = ctx.containers
    signum = signal_number(sig)
    with cs.container_lock(cid):
        rec = cs.load(cid)
        rt = ctx.runtime(rec)
        st = state.derive(cs, rec, rt)
        if not st.running or st.status == "restarting":
            raise CommandError(f"cannot kill container: {cid}: container {cid} is not running")
        stop_sig = signal_number(rec["Config"].get("StopSignal") or "SIGTERM")
        if signum in (signal.SIGKILL, stop_sig):
            rec["ManuallyStopped"] = True  # Docker: no restart after this
            cs.save(rec)
        cp = rt.kill(cid, signum)
        if cp.returncode != 0:
            raise CommandError(f"cannot kill container: {cid}: {cp.stderr.strip() or 'the runtime failed'}")
    events.emit(ctx, "kill", rec, signal=signum)
    return rec


def pause(ctx, cid, resume=False):
    cs = ctx.containers
    with cs.container_lock(cid):
        rec = cs.load(cid)
        rt = ctx.runtime(rec)
        st = state.derive(cs, rec, rt)
        if resume and st.status != "paused":
            raise CommandError(f"Container {cid} is not paused")
        if not resume:
            if st.status == "paused":
                raise CommandError(f"Container {cid} is already paused")
            if st.status != "running":
                raise CommandError(f"Container {cid} is not running")
        rt.check("resume" if resume else "pause", cid)
    events.emit(ctx, "unpause" if resume else "pause", rec)


def _cancel_restart(ctx, rec):
    r = rec.get("Restarting")
    if r and state.alive(r.get("Pid"), r.get("Start")):
        os.kill(r["Pid"], signal.SIGKILL)
    if r:
        rec.pop("Restarting")
        ctx.containers.save(rec)


# --- exit: settle, cleanup, restart policy, remove --------------------------------------------------
def settle(ctx, rec, rt):
    """An exited container: free what it held and record the exit once. Idempotent."""
    st = state.derive(ctx.containers, rec, rt)
    if st.running:
        return st
    release(ctx, rec, rt)
    if rec.get("Run"):
        rec["ExitCode"] = st.exit_code
        rec["FinishedAt"] = now_rfc3339(st.finished_at)
        rec["LastRun"] = rec["Run"]
        rec["Run"] = None
        # the exit file stays (readers holding the old record still find it); the next start removes it
        ctx.containers.save(rec)
        events.emit(ctx, "die", rec, exitCode=st.exit_code)
    return state.derive(ctx.containers, rec, rt)


def cleanup(ctx, cid):
    """The monitor's exit command: release, then --rm or the restart policy."""
    cs = ctx.containers
    try:
        lock = cs.container_lock(cid)
        with lock:
            rec = cs.load(cid)
            rt = ctx.runtime(rec)
            started = (rec.get("Run") or {}).get("StartedAtEpoch") or time.time()
            st = settle(ctx, rec, rt)
            if st.running:
                return  # restarted meanwhile by someone else
            if rec["HostConfig"].get("AutoRemove"):
                cs.keep_exit(cid, st.exit_code)
                remove(ctx, cid, force=True, volumes=True)
                return
            delay = _restart_delay(rec, st, time.time() - started)
            if delay is None:
                return
            rec["Restarting"] = {"Pid": os.getpid(), "Start": state.proc_start(os.getpid())}
            cs.save(rec)
        time.sleep(delay)
        with lock:
            rec = cs.load(cid)
            mine = rec.get("Restarting") or {}
            if mine.get("Pid") != os.getpid() or rec.get("ManuallyStopped"):
                return
            rec["RestartCount"] = rec.get("RestartCount", 0) + 1
            rec.pop("Restarting")
            cs.save(rec)
            start(ctx, cid)
            events.emit(ctx, "restart", rec)
    except NoSuchContainer:
        return


def will_restart(rec, exit_code):
    """Docker's restart manager: does this exit start the container again?"""
    policy = rec["HostConfig"].get("RestartPolicy") or {}
    name = policy.get("Name") or "no"
    if name == "no" or rec.get("ManuallyStopped"):
        return False
    if name == "on-failure":
        n = policy.get("MaximumRetryCount") or 0
        return exit_code != 0 and not (n and rec.get("RestartCount", 0) >= n)
    return True


def _restart_delay(rec, st, ran_for):
    if not will_restart(rec, st.exit_code):
        return None
    delay = rec.get("RestartDelay") or 0
    delay = BACKOFF_START if ran_for >= BACKOFF_RESET or not delay else min(delay * 2, BACKOFF_MAX)
    rec["RestartDelay"] = delay
    return delay


def remove(ctx, cid, force=False, volumes=False):
    cs = ctx.containers
    with cs.container_lock(cid):
        try:
            rec = cs.load(cid)
        except NoSuchContainer:
            return None
        rt = ctx.runtime(rec, for_removal=True)
        _cancel_restart(ctx, rec)
        st = state.derive(cs, rec, rt)
        if st.running:
            if not force:
                raise CommandError(f'cannot remove container "/{rec["Name"]}": container is {st.status}: stop '
                                   f'the container before removing or force remove')
            if st.status == "paused":
                rt.run("resume", cid)
            events.emit(ctx, "kill", rec, signal=int(signal.SIGKILL))
            rt.kill(cid, signal.SIGKILL, all_=True)
            wait_exit(ctx, rec, rt, 10)
        st = settle(ctx, rec, rt) if rec.get("Run") else st
        release(ctx, rec, rt)
        with cs.lock:
            with ctx.images:
                rootfs.remove_layer(ctx.images, cid)
            os.rename(cs.dir(cid), cs.dir(cid) + ".removing")  # gone at once for every lookup
            cs.release_name(rec["Name"], cid)
    shutil.rmtree(cs.dir(cid) + ".removing", ignore_errors=True)
    if volumes:
        _volumes_store.remove_anonymous(ctx, rec)
    events.emit(ctx, "destroy", rec)
    return rec


def rename(ctx, ref, new):
    cs = ctx.containers
    cid = cs.lookup(ref)
    with cs.container_lock(cid):
        rec = cs.load(cid)
        old = rec["Name"]
        if new.lstrip("/") == old:
            raise CommandError("Renaming a container with the same name as its current name")
        with cs.lock:
            cs.reserve_name(new.lstrip("/"), cid)
            rec["Name"] = new.lstrip("/")
            cs.save(rec)
            cs.release_name(old, cid)
    events.emit(ctx, "rename", rec, oldName="/" + old)


def set_detach_keys(ctx, cid, keys):
    cs = ctx.containers
    with cs.container_lock(cid):
        rec = cs.load(cid)
        rec["DetachKeys"] = keys
        cs.save(rec)
    return rec


def sweep(ctx, recs_states):
    """What killed commands left, seen by the next `ps`: a create killed before its record was
    written (a directory without record.json: its layer and directory go; create holds the store
    lock throughout, so one in progress is never mistaken for one killed), a removal killed after
    its rename (<id>.removing), and containers that exited while nobody cleaned up after them
    (their monitor or its exit command killed): unmounted and released, as cleanup would."""
    from pyctr.container.names import HEX64
    cs = ctx.containers
    for name in os.listdir(cs.base):
        if name.endswith(".removing"):
            shutil.rmtree(os.path.join(cs.base, name), ignore_errors=True)
        elif HEX64.match(name) and not os.path.exists(cs.path(name, "record.json")):
            with cs.lock:
                if os.path.isdir(cs.dir(name)) and not os.path.exists(cs.path(name, "record.json")):
                    with ctx.images:
                        rootfs.remove_layer(ctx.images, name)
                    shutil.rmtree(cs.dir(name), ignore_errors=True)
    from pyctr.network import sandbox
    for rec, st in recs_states:
        if not rec.get("Run") and st.status in ("created", "exited") and sandbox.pending(ctx, rec):
            with cs.container_lock(rec["Id"]):   # a start killed between its CNI ADD and its record
                try:
                    fresh = cs.load(rec["Id"])
                except NoSuchContainer:
                    continue
                if not fresh.get("Run"):
                    sandbox.teardown(ctx, fresh)
                    cs.save(fresh)
        if rec.get("Run") and st.status == "exited" and not cleanup_pending(rec):
            with cs.container_lock(rec["Id"]):
                try:
                    fresh = cs.load(rec["Id"])
                except NoSuchContainer:
                    continue
                if fresh.get("Run"):
                    settle(ctx, fresh, ctx.runtime(fresh, for_removal=True))


def cleanup_pending(rec):
    """The monitor's exit command may still be on its way (it runs right after the exit file is
    written): leave the container to it for a few seconds."""
    try:
        return time.time() - os.stat(os.path.join(os.path.dirname(rec["LogPath"]), "exit")).st_mtime < 5
    except OSError:
        return False


def wait_code(ctx, cid):
    """(the CLI's and the API's wait) The exit status once the container stopped (kept past a --rm removal)."""
    import time
    cs = ctx.containers
    delay = 0.005
    while True:
        try:
            rec = cs.load(cid)
        except NoSuchContainer:
            code = cs.kept_exit(cid)
            return 0 if code is None else code
        st = state.derive(cs, rec)
        if st.status == "created" or st.status == "exited" and not (
                will_restart(rec, st.exit_code) and cleanup_pending(rec)):
            return st.exit_code  # (a restart due keeps it "running" for wait, as Docker's)
        time.sleep(delay)
        delay = min(delay * 2, 0.1)
