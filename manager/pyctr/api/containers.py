"""/containers/*: create, list, inspect, start/stop/kill/restart/pause/unpause, wait, logs, attach,
resize, top, stats, rename, prune and DELETE, through pyctr.container.*."""
import asyncio
import time
from types import SimpleNamespace

from aiohttp import web

from pyctr.api import stream
from pyctr.api.errors import ApiError, body_json, boolean, filters, integer

_UNSET = object()


def _json(obj, status=200):
    return web.json_response(obj, status=status)


def _create_args(body, name):
    """The API's Config/HostConfig as the `run` flags lifecycle.create takes; what has no flag form
    is set by _adjust afterwards."""
    host = body.get("HostConfig") or {}
    if not isinstance(host, dict):
        raise ApiError(400, "HostConfig: an object is expected")
    image = body.get("Image")
    if not isinstance(image, str) or not image:
        raise ApiError(400, "Config cannot be empty in order to create a container")
    restart = host.get("RestartPolicy") or {}
    policy = restart.get("Name") or ""
    if policy == "on-failure" and restart.get("MaximumRetryCount"):
        policy += f":{int(restart['MaximumRetryCount'])}"
    net = host.get("NetworkMode") or "default"
    net = "bridge" if net == "default" else net  # Docker's default network is pyctr's too
    log = host.get("LogConfig") or {}
    cpus = host.get("NanoCpus") or 0
    tmpfs = host.get("Tmpfs") or {}
    mounts = []
    for m in host.get("Mounts") or []:
        spec = [f"type={m.get('Type', 'volume')}", f"dst={m.get('Target', '')}"]
        if m.get("Source"):
            spec.append(f"src={m['Source']}")
        if m.get("ReadOnly"):
            spec.append("ro")
        mounts.append(",".join(spec))
    return SimpleNamespace(
        image=image, name=name or None, command=[], rm=bool(host.get("AutoRemove")), restart=policy or None,
        entrypoint=None, env=list(body.get("Env") or []), env_file=[],
        label=[f"{k}={v}" for k, v in (body.get("Labels") or {}).items()],
        stop_signal=body.get("StopSignal") or None, hostname=body.get("Hostname") or None,
        user=body.get("User") if body.get("User") else None,
        interactive=bool(body.get("OpenStdin")), detach=not (body.get("AttachStdout") or body.get("AttachStderr")),
        tty=bool(body.get("Tty")), workdir=body.get("WorkingDir") or None, stop_timeout=body.get("StopTimeout"),
        log_opt=[f"{k}={v}" for k, v in (log.get("Config") or {}).items()], log_driver=log.get("Type") or "json-file",
        cpus=str(cpus / 1e9) if cpus else None, memory=str(host["Memory"]) if host.get("Memory") else None,
        security_opt=list(host.get("SecurityOpt") or []), volume=list(host.get("Binds") or []), mount=mounts,
        tmpfs=[f"{p}:{o}" if o else p for p, o in tmpfs.items()], network=net, runtime=host.get("Runtime") or None,
        cap_add=list(host.get("CapAdd") or []), cap_drop=list(host.get("CapDrop") or []),
        privileged=bool(host.get("Privileged")), read_only=bool(host.get("ReadonlyRootfs")),
        pids_limit=host.get("PidsLimit"), ulimit=[f"{u['Name']}={u['Soft']}:{u['Hard']}" for u in host.get("Ulimits") or []],
        device=[f"{d['PathOnHost']}:{d.get('PathInContainer') or d['PathOnHost']}:{d.get('CgroupPermissions') or 'rwm'}"
                for d in host.get("Devices") or []],
        init=bool(host.get("Init")), **_network_args(body, host))


def _network_args(body, host):
    """The API's port and name-resolution fields as the -p/-P/--expose/--add-host/--dns* flags
    they come from, so both paths go through one parser."""
    publish = []
    for port, binds in (host.get("PortBindings") or {}).items():
        for b in binds or [{}]:
            ip, hp = (b or {}).get("HostIp") or "", (b or {}).get("HostPort") or ""
            publish.append(f"{ip}:{hp}:{port}" if ip else f"{hp}:{port}" if hp else port)
    aliases = []
    for ep in ((body.get("NetworkingConfig") or {}).get("EndpointsConfig") or {}).values():
        aliases += list((ep or {}).get("Aliases") or [])
    return dict(publish=publish, publish_all=bool(host.get("PublishAllPorts")),
                expose=list(body.get("ExposedPorts") or {}), add_host=list(host.get("ExtraHosts") or []),
                dns=list(host.get("Dns") or []), dns_search=list(host.get("DnsSearch") or []),
                dns_option=list(host.get("DnsOptions") or []), network_alias=aliases)


def _adjust(body):
    """Config fields the flags cannot say: an Entrypoint list, Cmd as given, the Attach* flags."""
    def adjust(config, host):
        if "Entrypoint" in body and body["Entrypoint"] is not None:
            ep = body["Entrypoint"]
            ep = [ep] if isinstance(ep, str) else list(ep)
            config["Entrypoint"] = ep or None
            if not body.get("Cmd"):
                config["Cmd"] = None  # a new entrypoint drops the image's Cmd, as Docker
        for k in ("AttachStdin", "AttachStdout", "AttachStderr", "StdinOnce"):
            if k in body:
                config[k] = bool(body[k])
        if body.get("ExposedPorts"):
            config["ExposedPorts"] = body["ExposedPorts"]
        if body.get("Volumes"):
            config["Volumes"] = {**(config.get("Volumes") or {}), **body["Volumes"]}
    return adjust


class Containers:
    def __init__(self, service):
        self.svc = service
        self.ctx = service.ctx
        # attach requests made before start (the docker CLI's `run`): served from the start
        self.pending = {}

    def routes(self, add):
        add("POST", "/containers/create", self.create)
        add("GET", "/containers/json", self.list)
        add("POST", "/containers/prune", self.prune)
        add("GET", "/containers/{id}/json", self.inspect)
        add("POST", "/containers/{id}/start", self.start)
        add("POST", "/containers/{id}/stop", self.stop)
        add("POST", "/containers/{id}/kill", self.kill)
        add("POST", "/containers/{id}/restart", self.restart)
        add("POST", "/containers/{id}/pause", self.pause)
        add("POST", "/containers/{id}/unpause", self.unpause)
        add("POST", "/containers/{id}/wait", self.wait)
        add("GET", "/containers/{id}/logs", self.logs)
        add("POST", "/containers/{id}/attach", self.attach)
        add("POST", "/containers/{id}/resize", self.resize)
        add("GET", "/containers/{id}/top", self.top)
        add("GET", "/containers/{id}/stats", self.stats)
        add("POST", "/containers/{id}/rename", self.rename)
        add("DELETE", "/containers/{id}", self.delete)

    def _id(self, request):
        return self.ctx.containers.lookup(request.match_info["id"])

    async def _cid(self, request):
        return await self.svc.run(self._id, request)

    # --- create, list, inspect ------------------------------------------------------------------
    async def create(self, request):
        from pyctr.container import lifecycle
        body = await body_json(request, required=True)
        args = _create_args(body, request.query.get("name"))
        cmd = body.get("Cmd")
        cmd = [cmd] if isinstance(cmd, str) else list(cmd or [])
        rec = await self.svc.run(lifecycle.create, self.ctx, args, cmd, _adjust(body))
        return _json({"Id": rec["Id"], "Warnings": []}, 201)

    def _summary(self, rec, st, now):
        from pyctr.container import listing
        from pyctr.container.oci import argv_of
        argv = argv_of(rec["Config"])
        return {"Id": rec["Id"], "Names": ["/" + rec["Name"]], "Image": rec["Config"].get("Image", ""),
                "ImageID": rec["Image"], "Command": " ".join(argv),
                "Created": int(listing._epoch(rec["Created"])), "Ports": [],
                "Labels": rec["Config"].get("Labels") or {}, "State": st.status,
                "Status": listing.status_text(rec, st, now),
                "HostConfig": {"NetworkMode": rec["HostConfig"].get("NetworkMode", "none")},
                "NetworkSettings": {"Networks": {rec["HostConfig"].get("NetworkMode", "none"): {
                    "NetworkID": "", "EndpointID": "", "Gateway": "", "IPAddress": "", "IPPrefixLen": 0,
                    "MacAddress": ""}}},
                "Mounts": [{"Type": m["Type"], "Name": m.get("Name", ""), "Source": m["Source"],
                            "Destination": m["Destination"], "Driver": m.get("Driver", ""), "Mode": m.get("Mode", ""),
                            "RW": m.get("RW", True), "Propagation": m.get("Propagation", "")}
                           for m in rec.get("Mounts") or []]}

    def _list(self, show_all, limit, wanted):
        from pyctr.container import lifecycle, listing, state
        cs = self.ctx.containers
        now = time.time()
        recs = sorted(cs.all(), key=lambda r: r["Created"], reverse=True)
        states = [(r, state.derive(cs, r)) for r in recs]
        lifecycle.sweep(self.ctx, states)
        out = []
        for rec, st in states:
            if not show_all and not st.running and not any(f.startswith("status=") for f in wanted):
                continue
            if listing._matches(rec, st, wanted):
                out.append(self._summary(rec, st, now))
        return out[:limit] if limit and limit > 0 else out

    async def list(self, request):
        limit = integer(request, "limit", -1)
        return _json(await self.svc.run(self._list, boolean(request, "all") or limit > 0, limit, filters(request)))

    async def inspect(self, request):
        from pyctr.container import listing

        def one():
            cs = self.ctx.containers
            return listing.inspect_record(self.ctx, cs.load(cs.lookup(request.match_info["id"])))
        return _json(await self.svc.run(one))

    # --- lifecycle ------------------------------------------------------------------------------
    async def start(self, request):
        from pyctr.container import lifecycle
        cid = await self._cid(request)
        waiting = self.pending.pop(cid, [])
        sessions = []

        def before_start(rec):
            for conn, stdin in waiting:
                sessions.append((conn, self._session(cid, stdin, rec)))

        try:
            _, started = await self.svc.run(lifecycle.start, self.ctx, cid, before_start)
        except BaseException:
            for conn, s in sessions:
                s.close()
            for conn, _ in waiting:
                conn.close()
            raise
        for conn, s in sessions:
            self._relay_in_thread(conn, s)
        for conn, _ in waiting[len(sessions):]:   # it ran already: attach to it as it is
            self._attach_running(conn, cid, _)
        return web.Response(status=204 if started else 304)

    async def stop(self, request):
        from pyctr.container import lifecycle, state
        cid = await self._cid(request)
        t = integer(request, "t")

        def stop():
            if not state.derive(self.ctx.containers, self.ctx.containers.load(cid)).running:
                return False
            lifecycle.stop(self.ctx, cid, t, request.query.get("signal") or None)
            return True
        return web.Response(status=204 if await self.svc.run(stop) else 304)

    async def kill(self, request):
        from pyctr.container import lifecycle, state
        cid = await self._cid(request)

        def kill():
            if not state.derive(self.ctx.containers, self.ctx.containers.load(cid)).running:
                raise ApiError(409, f"Container {cid} is not running")
            lifecycle.kill(self.ctx, cid, request.query.get("signal") or "KILL")
        await self.svc.run(kill)
        return web.Response(status=204)

    async def restart(self, request):
        from pyctr.container import lifecycle
        cid = await self._cid(request)
        t = integer(request, "t")

        def restart():
            lifecycle.stop(self.ctx, cid, t)
            lifecycle.start(self.ctx, cid)
        await self.svc.run(restart)
        return web.Response(status=204)

    async def pause(self, request, resume=False):
        from pyctr.container import lifecycle
        cid = await self._cid(request)
        await self.svc.run(lifecycle.pause, self.ctx, cid, resume)
        return web.Response(status=204)

    async def unpause(self, request):
        return await self.pause(request, resume=True)

    async def wait(self, request):
        """not-running (default), next-exit (once it has run: the CLI waits before it starts),
        removed; polled on the loop, so a client that leaves ends the wait."""
        from pyctr.container import lifecycle, state
        from pyctr.container.errors import NoSuchContainer
        cid = await self._cid(request)
        condition = request.query.get("condition") or "not-running"
        if condition not in ("not-running", "next-exit", "removed"):
            raise ApiError(400, f"invalid condition: {condition!r}")
        cs = self.ctx.containers

        def status():
            try:
                rec = cs.load(cid)
            except NoSuchContainer:
                return "removed"
            st = state.derive(cs, rec)
            if st.status == "exited" and lifecycle.will_restart(rec, st.exit_code) and lifecycle.cleanup_pending(rec):
                return "running"
            return st.status
        # the headers now, as dockerd: the docker CLI's wait returns from its request only then,
        # and only then starts the container (next-exit)
        resp = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
        await resp.prepare(request)
        seen_running = False
        delay = 0.005
        while True:
            s = await self.svc.run(status)
            seen_running = seen_running or s in ("running", "paused", "restarting")
            done = {"removed": s == "removed",
                    "next-exit": seen_running and s in ("exited", "removed"),
                    "not-running": s not in ("running", "paused", "restarting")}[condition]
            if done:
                break
            if request.transport is None or request.transport.is_closing():
                return resp  # the client left: the wait ends with it
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.1)
        code = await self.svc.run(lifecycle.wait_code, self.ctx, cid)
        await resp.write(__import__("json").dumps({"StatusCode": code, "Error": None}).encode() + b"\n")
        await resp.write_eof()
        return resp

    async def delete(self, request):
        from pyctr.container import lifecycle
        cid = await self._cid(request)
        await self.svc.run(lifecycle.remove, self.ctx, cid, boolean(request, "force"), boolean(request, "v"))
        for conn, _ in self.pending.pop(cid, []):  # attached, never started: their stream ends
            conn.close()
        return web.Response(status=204)

    async def rename(self, request):
        from pyctr.container import lifecycle
        name = request.query.get("name")
        if not name:
            raise ApiError(400, "new name is required")
        await self.svc.run(lifecycle.rename, self.ctx, request.match_info["id"], name)
        return web.Response(status=204)

    async def prune(self, request):
        from pyctr.container import lifecycle, state
        wanted = filters(request)

        def prune():
            removed = []
            for rec in self.ctx.containers.all():
                st = state.derive(self.ctx.containers, rec)
                if st.status in ("exited", "created", "dead") and self._labels_match(rec, wanted):
                    lifecycle.remove(self.ctx, rec["Id"])
                    removed.append(rec["Id"])
            return removed
        removed = await self.svc.run(prune)
        return _json({"ContainersDeleted": removed or None, "SpaceReclaimed": 0})

    @staticmethod
    def _labels_match(rec, wanted):
        labels = rec["Config"].get("Labels") or {}
        for f in wanted:
            k, _, v = f.partition("=")
            key, _, val = v.partition("=")
            has = key in labels and (not val or labels[key] == val)
            if k == "label" and not has or k == "label!" and has:
                return False
        return True

    # --- logs, attach, resize -------------------------------------------------------------------
    async def logs(self, request):
        from pyctr.container import logs as clogs, state
        cid = await self._cid(request)
        rec = await self.svc.run(self.ctx.containers.load, cid)
        if (rec["HostConfig"].get("LogConfig") or {}).get("Type") == "none":
            raise ApiError(501, "configured logging driver does not support reading")
        want_out, want_err = boolean(request, "stdout"), boolean(request, "stderr")
        if not (want_out or want_err):
            raise ApiError(400, "Bad parameters: you must choose at least one stream")
        tail = request.query.get("tail", "all")
        try:
            tail = None if tail in ("all", "") or int(tail) < 0 else int(tail)
        except ValueError:
            raise ApiError(400, f'invalid value for "tail": {tail!r}') from None
        since = float(request.query["since"]) if request.query.get("since", "0") not in ("", "0") else None
        until = float(request.query["until"]) if request.query.get("until", "0") not in ("", "0") else None
        tty = rec["Config"].get("Tty")
        resp = await stream.chunked(request, stream.raw_stream_type(tty))
        loop = asyncio.get_running_loop()

        class Sink(stream.ThreadWriter):
            def __init__(self, which, wanted):
                super().__init__(loop, resp, None if tty else which)
                self.wanted = wanted

            def write(self, data):
                return super().write(data) if self.wanted else 0
        out, err = Sink(stream.STDOUT, want_out), Sink(stream.STDERR, want_err)
        ts = boolean(request, "timestamps")

        def produce():
            import os
            entries = clogs.read(rec["LogPath"], tail, since, until)
            clogs.write(entries, ts, out, err)
            if boolean(request, "follow"):
                try:
                    offset = os.path.getsize(rec["LogPath"])
                except OSError:
                    offset = 0
                cs = self.ctx.containers
                clogs.follow(rec["LogPath"], lambda: state.derive(cs, cs.load(cid)).running, ts, out, err,
                             None, until, offset)
        try:
            await self.svc.run(produce)
        except Exception:  # the client left, or the container went: the stream just ends
            pass
        await resp.write_eof()
        return resp

    def _session(self, cid, stdin, rec):
        from pyctr.container import attach
        return attach.Session(self.ctx, cid, stdin and rec["Config"].get("OpenStdin"), rec["Config"].get("Tty"),
                              rec.get("DetachKeys"))

    def _relay_in_thread(self, conn, session):
        self.svc.spawn(stream.relay, conn, session, session.tty)

    def _attach_running(self, conn, cid, stdin):
        try:
            s = self._session(cid, stdin, self.ctx.containers.load(cid))
        except Exception:
            conn.close()
            return
        self._relay_in_thread(conn, s)

    async def attach(self, request):
        from pyctr.container import state
        cid = await self._cid(request)
        rec = await self.svc.run(self.ctx.containers.load, cid)
        st = await self.svc.run(state.derive, self.ctx.containers, rec)
        if st.status not in ("created", "running", "paused"):
            raise ApiError(409, "You cannot attach to a stopped container, start it first")
        stdin = boolean(request, "stdin")
        if not boolean(request, "stream") and not boolean(request, "logs"):
            raise ApiError(400, "attach: one of stream and logs must be given")
        conn = stream.hijack(request, stream.raw_stream_type(rec["Config"].get("Tty")))
        if st.status == "created":
            self.pending.setdefault(cid, []).append((conn, stdin))
        else:
            await self.svc.run(self._attach_running, conn, cid, stdin)
        return web.Response(status=101)

    async def resize(self, request):
        from pyctr.container import attach
        cid = await self._cid(request)
        h, w = integer(request, "h", 0), integer(request, "w", 0)
        if h < 0 or w < 0 or h > 65535 or w > 65535:
            raise ApiError(400, "invalid height or width")
        await self.svc.run(attach.resize, self.ctx, cid, h, w)
        return web.Response(status=200)

    # --- top, stats ------------------------------------------------------------
    async def top(self, request):
        import contextlib
        import io
        from pyctr.container import listing
        cid = await self._cid(request)
        ps_args = request.query.get("ps_args") or "-ef"

        def top():
            buf = io.StringIO()
            with contextlib.redirect_stdout(buf):
                listing.top(self.ctx, cid, ps_args.split())
            return buf.getvalue()
        lines = (await self.svc.run(top)).splitlines()
        if not lines:
            return _json({"Titles": [], "Processes": []})
        titles = lines[0].split()
        procs = [line.split(None, len(titles) - 1) for line in lines[1:]]
        return _json({"Titles": titles, "Processes": procs})

    async def stats(self, request):
        from pyctr.container import listing, state
        cid = await self._cid(request)
        cs = self.ctx.containers

        def sample():
            rec = cs.load(cid)
            st = state.derive(cs, rec)
            mem, limit, cpu, pids = listing._cgroup_numbers(cid) if st.running else (0, 0, 0, 0)
            import os
            now = time.time()
            return {"read": listing_now(now), "preread": "0001-01-01T00:00:00Z", "id": cid, "name": "/" + rec["Name"],
                    "pids_stats": {"current": pids}, "num_procs": 0,
                    "cpu_stats": {"cpu_usage": {"total_usage": cpu, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
                                  "system_cpu_usage": int(now * 1e9) * (os.cpu_count() or 1),
                                  "online_cpus": os.cpu_count() or 1, "throttling_data": {}},
                    "precpu_stats": {"cpu_usage": {"total_usage": 0}, "throttling_data": {}},
                    "memory_stats": {"usage": mem, "limit": limit or os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"),
                                     "stats": {}},
                    "blkio_stats": {}, "networks": {}}

        if not boolean(request, "stream", True) or boolean(request, "one-shot"):
            return _json(await self.svc.run(sample))
        resp = await stream.chunked(request)
        prev = None
        try:
            while True:
                s = await self.svc.run(sample)
                if prev:
                    s["precpu_stats"] = prev["cpu_stats"]
                    s["preread"] = prev["read"]
                await resp.write((__import__("json").dumps(s) + "\n").encode())
                prev = s
                await asyncio.sleep(1)
        except (ConnectionError, OSError):
            return resp


def listing_now(t):
    from pyctr.container.lifecycle import now_rfc3339
    return now_rfc3339(t)
