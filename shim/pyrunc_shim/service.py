"""containerd.task.v2.Task: the containers this shim serves (one, or every container of a pod when
`start` grouped them, see containerd_main.grouping), each an init and its execs, each a Process
driven through the runtime's command line. Exits come from the Reaper; TaskExit is never published before the
process's TaskStart/TaskExecStarted (an exit that races Start is held until Start has answered),
nor before what the process wrote has been copied out (ctr stops reading once Wait answers).
A Wait holds no thread: its Reply is kept with the process and sent when the exit is announced.
export()/restore() carry the containers, their processes and the Replies owed through the lean mode."""
import json
import os
import signal
import threading
import time

from google.protobuf import empty_pb2

from pyrunc_shim import errors, sys as shimsys
from pyrunc_shim.activity import Activity
from pyrunc_shim.errors import ShimError
from pyrunc_shim.events import pack_any, timestamp
from pyrunc_shim import options as runtime_options
from pyrunc_shim.pb.containerd import runc_options_pb2, shim_pb2, types_pb2
from pyrunc_shim.runtime import Runtime, resolve_binary
from pyrunc_shim.stdio import ProcessIO
from pyrunc_shim.ttrpc import framing
from pyrunc_shim.ttrpc.server import Later

SERVICE = "containerd.task.v2.Task"
CREATED, RUNNING, STOPPED, PAUSED = (types_pb2.CREATED, types_pb2.RUNNING, types_pb2.STOPPED,
                                     types_pb2.PAUSED)
IO_DRAIN_TIMEOUT = 5.0
CONFIG_MAX = 16 << 20  # config.json is read for its namespaces; bound what a bundle may hold


class Process:
    def __init__(self, cid, exec_id, io, spec=None):
        self.cid, self.exec_id, self.io, self.spec = cid, exec_id, io, spec
        self.pid = 0
        self.status = CREATED
        self.exit_status = 0
        self.exited_at = None
        self.exited = threading.Event()     # the process is gone
        self.announced = threading.Event()  # ...and its output copied: Wait answers, TaskExit went out
        self.started_published = False
        self.pending_exit = False
        self.waiters = []                   # server Replies owed to Wait requests
        self.lock = threading.Lock()

    def export(self):
        return {"cid": self.cid, "exec_id": self.exec_id, "spec": self.spec, "pid": self.pid,
                "status": self.status, "exit_status": self.exit_status, "exited_at": self.exited_at,
                "exited": self.exited.is_set(), "announced": self.announced.is_set(),
                "started": self.started_published, "pending_exit": self.pending_exit,
                "waits": [r.export() for r in self.waiters if r.alive()]}


class Container:
    """One container: its init and execs, its runtime (options come with each Create), the rootfs
    mounts the shim made for it, its OOM watch. `lock` orders its own requests; others go on."""

    def __init__(self, cid, bundle, runtime, io_owner, kill_all_on_exit=True):
        self.id, self.bundle, self.runtime, self.io_owner = cid, bundle, runtime, io_owner
        self.kill_all_on_exit = kill_all_on_exit
        self.init = None
        self.execs = {}
        self.mounted = []
        self.oom = None
        self.lock = threading.RLock()

    def procs(self):
        return ([self.init] if self.init is not None else []) + list(self.execs.values())


def kill_all_on_exit(bundle):
    """containerd's runc.ShouldKillAllOnExit: a container without a pid namespace of its own (a pod's
    shared one, or the host's) leaves its other processes behind when its init exits: they are
    killed then. Only a config that says "new pid namespace" keeps them (they die with the namespace)."""
    try:
        with open(os.path.join(bundle, "config.json"), "rb") as f:
            spec = json.loads(f.read(CONFIG_MAX))
        for ns in spec["linux"]["namespaces"]:
            if ns.get("type") == "pid" and not ns.get("path"):
                return False
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass
    return True


class TaskService:
    def __init__(self, reaper, publisher, namespace="default", default_binary="pyrunc",
                 runtime_root=None, on_shutdown=None, log=None, on_init_exit=None, activity=None,
                 start_error=None):
        self.activity = activity or Activity()
        self.start_error = start_error  # what went wrong with start's options: no Create can go on
        self.reaper = reaper
        self.events = publisher
        self.namespace = namespace
        self.default_binary = default_binary
        self.runtime_root = runtime_root
        self.on_shutdown = on_shutdown
        self.on_init_exit = on_init_exit
        self.log = log or (lambda m: None)
        self.lock = threading.RLock()  # creates, deletes of a container and Shutdown, one at a time
        self.containers = {}           # id -> Container, from a successful Create to its Delete

    # -- helpers -----------------------------------------------------------------------------
    def methods(self):
        m = {}
        for rpc in shim_pb2.DESCRIPTOR.services_by_name["Task"].methods:
            cls = getattr(shim_pb2, rpc.input_type.name)
            m[rpc.name] = (cls, getattr(self, rpc.name))
        return m

    def _container(self, cid):
        c = self.containers.get(cid)
        if c is None:
            raise errors.not_found(f"container {cid!r}")
        return c

    def _proc(self, cid, exec_id):
        c = self._container(cid)
        if not exec_id:
            return c, c.init
        p = c.execs.get(exec_id)
        if p is None:
            raise errors.not_found(f"process {exec_id!r} of container {cid!r}")
        return c, p

    def _on_exit(self, c, proc, code, when):
        with proc.lock:
            proc.exit_status, proc.exited_at, proc.status = code, when, STOPPED
        proc.exited.set()
        if proc is c.init:
            # the container is gone: its execs cannot outlive it (no private pidns: kill them too)
            for e in list(c.execs.values()):
                if e.pid and not e.exited.is_set():
                    try:
                        os.kill(e.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
        # off the reaper's thread: runtime commands wait on it meanwhile
        self.activity.begin()
        threading.Thread(target=self._announce_exit, args=(proc, c), daemon=True).start()

    def _kill_all(self, c):
        """The init of a container sharing a pid namespace exited: what it left (orphans, which
        would hold its stdout open and live on in the pod) is killed, as containerd's runc shim does."""
        try:
            c.runtime.run("kill", "--all", c.id, "KILL")
        except ShimError as e:
            self.log(f"kill --all {c.id} after its init exited: {e.message}")

    def _watch_exit(self, c, proc):
        self.reaper.watch(proc.pid, lambda code, t: self._on_exit(c, proc, code, t))

    def _announce_exit(self, proc, c=None):
        try:
            if c is not None and proc is c.init and c.kill_all_on_exit:
                self._kill_all(c)
            proc.io.drain(IO_DRAIN_TIMEOUT)
            with proc.lock:
                publish = proc.started_published
                proc.pending_exit = not publish
            if publish:
                self._publish_exit(proc)
            with proc.lock:
                proc.announced.set()
                waiters, proc.waiters = proc.waiters, []
            for r in waiters:
                r.send(self._wait_response(proc))
            if not proc.exec_id and self.on_init_exit:
                self.on_init_exit(proc)
        finally:
            self.activity.end()

    def _publish_exit(self, proc):
        self.events.publish("TaskExit", container_id=proc.cid, id=proc.exec_id or proc.cid, pid=proc.pid,
                            exit_status=proc.exit_status, exited_at=timestamp(proc.exited_at))

    def _started(self, proc):
        """After TaskStart/TaskExecStarted went out: release an exit that came early."""
        with proc.lock:
            proc.started_published = True
            pending, proc.pending_exit = proc.pending_exit, False
        if pending:
            self._publish_exit(proc)

    def _read_pid(self, path):
        with open(path) as f:
            return int(f.read().strip())

    # -- Task methods ------------------------------------------------------------------------
    def Create(self, req, md):
        if self.start_error is not None:
            raise self.start_error
        with self.lock:
            if req.id in self.containers:
                raise errors.already_exists(f"container {req.id!r}")
            if not req.id:
                raise errors.invalid("create: id is empty")
            if req.checkpoint:
                raise ShimError(framing.UNIMPLEMENTED, "restore from a checkpoint: not implemented")
            ns = md.get("containerd-namespace-ttrpc") or self.namespace
            opts = runtime_options.from_any(req.options if req.HasField("options") else None)
            binary = resolve_binary(opts.get("BinaryName") or self.default_binary)
            root = opts.get("Root") or self.runtime_root or f"/run/containerd/{os.path.basename(binary)}"
            root = os.path.join(root, ns)
            with open(os.path.join(req.bundle, "options.json"), "w") as f:
                json.dump({"BinaryName": binary, "Root": root, "SystemdCgroup": bool(opts.get("SystemdCgroup"))}, f)
            c = Container(req.id, req.bundle,
                          Runtime(self.reaper, binary, root, req.bundle, bool(opts.get("SystemdCgroup"))),
                          (opts.get("IoUid", 0), opts.get("IoGid", 0)), kill_all_on_exit(req.bundle))
            rootfs = os.path.join(req.bundle, "rootfs")
            try:
                for m in req.rootfs:
                    self._mount(c, m, rootfs)
                io = ProcessIO(self.reaper, req.stdin, req.stdout, req.stderr, req.terminal,
                               env=self._logger_env(req.id, ns), activity=self.activity, owner=c.io_owner)
                proc = Process(req.id, "", io)
                args = ["create", "--bundle", req.bundle, "--pid-file", os.path.join(req.bundle, "init.pid")]
                if io.console_socket:
                    args += ["--console-socket", io.console_socket]
                if opts.get("NoPivotRoot"):
                    args.append("--no-pivot")
                if opts.get("NoNewKeyring"):
                    args.append("--no-new-keyring")
                fds = io.runtime_fds()
                try:
                    c.runtime.run(*args, req.id, stdin=fds[0], stdout=fds[1], stderr=fds[2])
                except Exception:
                    io.abort()
                    raise
                io.after_runtime()
                proc.pid = self._read_pid(os.path.join(req.bundle, "init.pid"))
                c.init = proc
            except Exception:
                self._unmount(c)
                raise
            self.containers[req.id] = c
            self._watch_exit(c, proc)
            self.events.publish("TaskCreate", container_id=req.id, bundle=req.bundle, rootfs=list(req.rootfs),
                                io={"stdin": req.stdin, "stdout": req.stdout, "stderr": req.stderr,
                                    "terminal": req.terminal}, pid=proc.pid)
            self._watch_oom(c)
            return shim_pb2.CreateTaskResponse(pid=proc.pid)

    @staticmethod
    def _logger_env(cid, ns):
        env = dict(os.environ)
        env.update(CONTAINER_ID=cid, CONTAINER_NAMESPACE=ns)
        return env

    def _mount(self, c, m, target):
        os.makedirs(target, exist_ok=True)
        flags, data = 0, []
        for o in m.options:
            if o == "ro":
                flags |= shimsys.MS_RDONLY
            elif o in ("bind", "rbind"):
                flags |= shimsys.MS_BIND | (shimsys.MS_REC if o == "rbind" else 0)
            elif o in ("rw", "defaults"):
                pass
            elif o == "nosuid":
                flags |= shimsys.MS_NOSUID
            elif o == "nodev":
                flags |= shimsys.MS_NODEV
            elif o == "noexec":
                flags |= shimsys.MS_NOEXEC
            else:
                data.append(o)
        fstype = None if m.type == "bind" or flags & shimsys.MS_BIND else m.type
        shimsys.mount(m.source, target, fstype, flags & ~shimsys.MS_RDONLY if fstype is None else flags,
                      ",".join(data))
        c.mounted.append(target)
        if fstype is None and flags & shimsys.MS_RDONLY:  # a bind mount is made read-only by a remount
            shimsys.mount("", target, None, flags | shimsys.MS_REMOUNT, "")

    def _unmount(self, c):
        while c.mounted:
            t = c.mounted.pop()
            try:
                shimsys.umount(t, shimsys.MNT_DETACH)
            except OSError as e:
                self.log(f"unmount {t}: {e}")

    def Start(self, req, md):
        c, proc = self._proc(req.id, req.exec_id)
        with c.lock:
            if proc.status != CREATED or proc.exited.is_set() and proc.pid:
                raise errors.failed_precondition(f"process {req.exec_id or req.id}: cannot start, not created")
            if req.exec_id:
                self._start_exec(c, proc)
                self.events.publish("TaskExecStarted", container_id=req.id, exec_id=req.exec_id, pid=proc.pid)
            else:
                c.runtime.run("start", req.id)
                with proc.lock:
                    if proc.status == CREATED:
                        proc.status = RUNNING
                self.events.publish("TaskStart", container_id=req.id, pid=proc.pid)
            self._started(proc)
            return shim_pb2.StartResponse(pid=proc.pid)

    def _start_exec(self, c, proc):
        if c.init.exited.is_set():
            raise errors.failed_precondition(f"container {proc.cid}: not running, cannot exec")
        spec_path = os.path.join(c.bundle, f".{proc.exec_id}.process.json")
        pid_path = os.path.join(c.bundle, f"{proc.exec_id}.pid")
        with open(spec_path, "wb") as f:
            f.write(proc.spec)
        args = ["exec", "--process", spec_path, "--detach", "--pid-file", pid_path]
        if proc.io.console_socket:
            args += ["--console-socket", proc.io.console_socket]
        fds = proc.io.runtime_fds()
        try:
            c.runtime.run(*args, proc.cid, stdin=fds[0], stdout=fds[1], stderr=fds[2])
        except Exception:
            proc.io.abort()
            raise
        finally:
            os.unlink(spec_path)
        proc.io.after_runtime()
        proc.pid = self._read_pid(pid_path)
        os.unlink(pid_path)
        proc.status = RUNNING
        self._watch_exit(c, proc)

    def Exec(self, req, md):
        c = self._container(req.id)
        with c.lock:
            if req.exec_id in c.execs:
                raise errors.already_exists(f"exec {req.exec_id!r}")
            if c.init.exited.is_set():
                raise errors.failed_precondition(f"container {req.id}: not running, cannot exec")
            if not req.exec_id:
                raise errors.invalid("exec: exec_id is empty")
            io = ProcessIO(self.reaper, req.stdin, req.stdout, req.stderr, req.terminal,
                           env=self._logger_env(req.id, self.namespace), activity=self.activity,
                           owner=c.io_owner)
            c.execs[req.exec_id] = Process(req.id, req.exec_id, io, spec=req.spec.value)
            self.events.publish("TaskExecAdded", container_id=req.id, exec_id=req.exec_id)
            return empty_pb2.Empty()

    def Delete(self, req, md):
        c, proc = self._proc(req.id, req.exec_id)
        with c.lock:
            if proc.pid and not proc.exited.is_set() and proc.status != CREATED:
                raise errors.failed_precondition(f"process {req.exec_id or req.id}: cannot delete a running process")
            if req.exec_id:
                c.execs.pop(req.exec_id, None)
                proc.io.wait(IO_DRAIN_TIMEOUT)
                if proc.exited.is_set():
                    proc.announced.wait(IO_DRAIN_TIMEOUT)  # TaskExit before the exec is forgotten
                proc.io.close()
            else:
                if self.containers.get(req.id) is not c:
                    raise errors.not_found(f"container {req.id!r}")  # a concurrent Delete won
                c.runtime.run("delete", "--force", req.id) if proc.status == CREATED \
                    else c.runtime.run("delete", req.id)
                if proc.status == CREATED and not proc.exited.is_set():
                    proc.exited.wait(10)  # --force killed it; let the reaper record the exit
                proc.io.wait(IO_DRAIN_TIMEOUT)
                if proc.exited.is_set():
                    proc.announced.wait(IO_DRAIN_TIMEOUT)  # TaskExit before TaskDelete
                proc.io.close()
                self._unmount(c)
                when = proc.exited_at or time.time()
                self.events.publish("TaskDelete", container_id=req.id, pid=proc.pid,
                                    exit_status=proc.exit_status, exited_at=timestamp(when), id=req.id)
                with self.lock:
                    del self.containers[req.id]
            return shim_pb2.DeleteResponse(pid=proc.pid, exit_status=proc.exit_status,
                                           exited_at=timestamp(proc.exited_at or time.time()))

    def Kill(self, req, md):
        c, proc = self._proc(req.id, req.exec_id)
        if req.exec_id:
            if proc.exited.is_set() or not proc.pid:
                raise errors.not_found(f"process {req.exec_id}: already finished")
            os.kill(proc.pid, req.signal)
        else:
            if proc.exited.is_set() and not req.all:
                raise errors.not_found(f"process {req.id}: already finished")
            args = ["kill"] + (["--all"] if req.all else []) + [req.id, str(req.signal)]
            try:
                c.runtime.run(*args)
            except ShimError:
                if proc.exited.is_set():
                    raise errors.not_found(f"process {req.id}: already finished")
                raise
        return empty_pb2.Empty()

    def Pids(self, req, md):
        c = self._container(req.id)
        pids = json.loads(c.runtime.run("ps", "--format", "json", req.id, capture=True) or b"[]")
        by_pid = {p.pid: p.exec_id for p in c.execs.values() if p.pid}
        out = shim_pb2.PidsResponse()
        for pid in pids:
            info = out.processes.add(pid=pid)
            if pid in by_pid:
                info.info.CopyFrom(pack_any(runc_options_pb2.ProcessDetails(exec_id=by_pid[pid])))
        return out

    def Pause(self, req, md):
        c = self._container(req.id)
        c.runtime.run("pause", req.id)
        c.init.status = PAUSED
        self.events.publish("TaskPaused", container_id=req.id)
        return empty_pb2.Empty()

    def Resume(self, req, md):
        c = self._container(req.id)
        c.runtime.run("resume", req.id)
        if not c.init.exited.is_set():
            c.init.status = RUNNING
        self.events.publish("TaskResumed", container_id=req.id)
        return empty_pb2.Empty()

    def Checkpoint(self, req, md):
        raise ShimError(framing.UNIMPLEMENTED, "checkpoint: not implemented")

    def State(self, req, md):
        c, p = self._proc(req.id, req.exec_id)
        io = p.io
        r = shim_pb2.StateResponse(id=p.exec_id or p.cid, bundle=c.bundle, pid=p.pid, status=p.status,
                                   stdin=io.stdin_uri, stdout=io.stdout_uri, stderr=io.stderr_uri,
                                   terminal=io.terminal, exit_status=p.exit_status, exec_id=p.exec_id)
        if p.exited_at:
            r.exited_at.CopyFrom(timestamp(p.exited_at))
        return r

    def Wait(self, req, md):
        _c, p = self._proc(req.id, req.exec_id)
        return Later(lambda reply: self._add_waiter(p, reply))

    def _add_waiter(self, p, reply):
        with p.lock:
            if not p.announced.is_set():
                p.waiters.append(reply)
                return
        reply.send(self._wait_response(p))

    @staticmethod
    def _wait_response(p):
        return shim_pb2.WaitResponse(exit_status=p.exit_status, exited_at=timestamp(p.exited_at))

    def Stats(self, req, md):
        c = self._container(req.id)
        from pyrunc_shim import stats
        out = c.runtime.run("events", "--stats", req.id, capture=True)
        try:
            data = json.loads(out.splitlines()[0] if out else b"{}").get("data")
        except (ValueError, AttributeError) as e:
            raise ShimError(framing.UNKNOWN, f"{c.runtime.binary} events --stats: not JSON ({e})") from None
        return shim_pb2.StatsResponse(stats=pack_any(stats.from_runtime(data)))

    def Connect(self, req, md):
        from pyrunc_shim import __version__
        c = self.containers.get(req.id)
        return shim_pb2.ConnectResponse(shim_pid=os.getpid(), task_pid=c.init.pid if c else 0,
                                        version=__version__)

    def Shutdown(self, req, md):
        with self.lock:
            if self.containers and not req.now:
                return empty_pb2.Empty()  # containerd asks after every delete; still in use
        if self.on_shutdown:
            self.on_shutdown()
        return empty_pb2.Empty()

    def ResizePty(self, req, md):
        _c, p = self._proc(req.id, req.exec_id)
        p.io.resize(req.width, req.height)
        return empty_pb2.Empty()

    def CloseIO(self, req, md):
        _c, p = self._proc(req.id, req.exec_id)
        if req.stdin:
            p.io.close_stdin()
        return empty_pb2.Empty()

    def Update(self, req, md):
        c = self._container(req.id)
        c.runtime.run("update", "--resources", "-", req.id, input_bytes=req.resources.value)
        return empty_pb2.Empty()

    # -- OOM ---------------------------------------------------------------------------------
    def _watch_oom(self, c):
        from pyrunc_shim import oom
        c.oom = oom.watch(c.init.pid, self._oom_callback(c.id), self.log, self.activity)

    def _oom_callback(self, cid):
        return lambda: self.events.publish("TaskOOM", container_id=cid)

    # -- handover to and from the lean mode --------------------------------------------------
    def _procs(self):
        return [p for c in list(self.containers.values()) for p in c.procs()]

    def lean_blocker(self):
        """Why the shim cannot go lean now (None: it can, as far as the service knows)."""
        for p in self._procs():
            if not p.io.settled:
                return f"process {p.exec_id or p.cid}: created, its stdio not handed to the runtime yet"
            if p.exited.is_set() and not p.announced.is_set():
                return f"process {p.exec_id or p.cid}: exit being announced"
        return None

    def export(self):
        """-> the service's part of the handover state: each container and its processes (the
        init first, then the execs)."""
        containers = []
        for c in self.containers.values():
            procs = []
            for p in c.procs():
                st = p.export()
                st["io"] = p.io.export()
                procs.append(st)
            rt = c.runtime
            containers.append({"id": c.id, "bundle": c.bundle, "mounted": list(c.mounted),
                               "io_owner": list(c.io_owner),
                               "runtime": [rt.binary, rt.root, rt.bundle, rt.systemd_cgroup],
                               "kill_all_on_exit": c.kill_all_on_exit,
                               "procs": procs, "oom": c.oom.export() if c.oom is not None else None})
        return {"namespace": self.namespace, "default_binary": self.default_binary,
                "runtime_root": self.runtime_root, "containers": containers}

    def restore(self, st, server):
        """Take the containers over from the previous program: processes (exits watched again,
        copying restarted, Waits still owed), runtimes, mounts, the OOM watches."""
        from pyrunc_shim import oom
        self.namespace, self.default_binary = st["namespace"], st["default_binary"]
        self.runtime_root = st["runtime_root"]
        restored = []
        for cs in st["containers"]:
            c = Container(cs["id"], cs["bundle"], Runtime(self.reaper, *cs["runtime"]), tuple(cs["io_owner"]),
                          cs["kill_all_on_exit"])
            c.mounted = cs["mounted"]
            for i, ps in enumerate(cs["procs"]):
                p = Process(ps["cid"], ps["exec_id"], ProcessIO.restore(ps["io"], self.activity), spec=ps["spec"])
                p.pid, p.status, p.exit_status, p.exited_at = ps["pid"], ps["status"], ps["exit_status"], ps["exited_at"]
                p.started_published, p.pending_exit = ps["started"], ps["pending_exit"]
                if ps["exited"]:
                    p.exited.set()
                if ps["announced"]:
                    p.announced.set()
                p.waiters = [r for r in (server.reply_to(fd, sid) for fd, sid in ps["waits"]) if r is not None]
                if i == 0:
                    c.init = p
                else:
                    c.execs[p.exec_id] = p
            self.containers[c.id] = c
            c.oom = oom.restore(cs["oom"], self._oom_callback(c.id), self.activity)
            restored.append(c)
        for c in restored:  # all known before any exit is told (init's exit kills the execs)
            for p in c.procs():
                if not p.exited.is_set() and p.pid:
                    self._watch_exit(c, p)
                elif p.exited.is_set() and not p.announced.is_set():  # not handed over so, but never lose one
                    self.activity.begin()
                    threading.Thread(target=self._announce_exit, args=(p, c), daemon=True).start()
