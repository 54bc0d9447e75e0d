"""/_ping, /version, /info, /events (streamed from the store's event log), and the clear 501 of
what pyctr does not serve yet (build while `pyctr build` does not exist, exec)."""
import asyncio
import json
import os
import platform
import time

from aiohttp import web

from pyctr import __version__
from pyctr.api import stream
from pyctr.api.errors import API_VERSION, MIN_API_VERSION, ApiError, filters

PING_HEADERS = {"API-Version": API_VERSION, "Docker-Experimental": "false", "OSType": "linux",
                "Builder-Version": "1", "Cache-Control": "no-cache, no-store, must-revalidate", "Pragma": "no-cache"}


class System:
    def __init__(self, service):
        self.svc = service
        self.ctx = service.ctx

    def routes(self, add):
        add("GET", "/_ping", self.ping)
        add("HEAD", "/_ping", self.ping)
        add("GET", "/version", self.version)
        add("GET", "/info", self.info)
        add("GET", "/events", self.events)
        add("POST", "/build", self.build)

    async def ping(self, request):
        return web.Response(text="OK" if request.method == "GET" else "", headers=PING_HEADERS,
                            content_type="text/plain")

    async def version(self, request):
        u = os.uname()
        return web.json_response({
            "Platform": {"Name": "pyctr"},
            "Components": [{"Name": "Engine", "Version": __version__,
                            "Details": {"ApiVersion": API_VERSION, "MinAPIVersion": MIN_API_VERSION,
                                        "Os": "linux", "Arch": _arch(), "KernelVersion": u.release}}],
            "Version": __version__, "ApiVersion": API_VERSION, "MinAPIVersion": MIN_API_VERSION,
            "GitCommit": "", "GoVersion": "python" + platform.python_version(), "Os": "linux", "Arch": _arch(),
            "KernelVersion": u.release, "BuildTime": ""})

    async def info(self, request):
        from pyctr.container import state

        def counts():
            cs = self.ctx.containers
            recs = cs.all()
            sts = [state.derive(cs, r).status for r in recs]
            images = len(self.svc.images_store().image_ids())
            return len(recs), sts.count("running"), sts.count("paused"), images
        total, running, paused, images = await self.svc.run(counts)
        u = os.uname()
        return web.json_response({
            "ID": "", "Containers": total, "ContainersRunning": running, "ContainersPaused": paused,
            "ContainersStopped": total - running - paused, "Images": images, "Driver": "overlay2",
            "DriverStatus": [["Backing Filesystem", "extfs"]], "DockerRootDir": self.ctx.root,
            "Plugins": {"Volume": ["local"], "Network": ["host", "null"], "Log": ["json-file"]},
            "MemoryLimit": True, "SwapLimit": False, "CpuCfsPeriod": True, "CpuCfsQuota": True,
            "IPv4Forwarding": False, "Debug": False, "NFd": 0, "NGoroutines": 0,
            "SystemTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "LoggingDriver": "json-file",
            "CgroupDriver": "cgroupfs", "CgroupVersion": "1" if not os.path.exists("/sys/fs/cgroup/cgroup.controllers")
            else "2", "KernelVersion": u.release, "OperatingSystem": _os_name(), "OSType": "linux",
            "Architecture": u.machine, "NCPU": os.cpu_count() or 1,
            "MemTotal": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"), "Name": u.nodename,
            "Labels": [], "ExperimentalBuild": False, "ServerVersion": __version__,
            "Runtimes": {"pyrunc": {"path": "pyrunc"}, "runc": {"path": "runc"}}, "DefaultRuntime": "pyrunc",
            "Swarm": {"LocalNodeState": "inactive"}, "LiveRestoreEnabled": True, "Isolation": "",
            "InitBinary": "", "SecurityOptions": ["name=seccomp,profile=default"], "Warnings": None,
            "RegistryConfig": {"IndexConfigs": {}, "InsecureRegistryCIDRs": ["127.0.0.0/8"], "Mirrors": []},
            "IndexServerAddress": "https://index.docker.io/v1/"})

    async def events(self, request):
        from pyctr.container import events as ev
        from pyctr.container.listing import _event_matches
        wanted = filters(request)
        since = _float(request, "since")
        until = _float(request, "until")
        seen = 0 if since is not None else len(await self.svc.run(ev.read, self.ctx))
        resp = await stream.chunked(request)
        try:
            while True:
                evs = await self.svc.run(ev.read, self.ctx)
                for e in evs[seen:]:
                    t = e["timeNano"] / 1e9
                    if (since is not None and t < since) or (until is not None and t > until):
                        continue
                    if _event_matches(e, wanted):
                        await resp.write((json.dumps(e) + "\n").encode())
                seen = len(evs)
                if until is not None and time.time() > until:
                    break
                await asyncio.sleep(0.2)
        except (ConnectionError, OSError):
            return resp
        await resp.write_eof()
        return resp

    async def build(self, request):
        raise ApiError(501, "build: pyctr has no image builder yet (`pyctr build` is not on this version)")


def _float(request, name):
    v = request.query.get(name)
    if not v:
        return None
    try:
        return float(v)
    except ValueError:
        raise ApiError(400, f"invalid value for {name!r}: {v!r}") from None


def _arch():
    m = os.uname().machine
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(m, m)


def _os_name():
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return "Linux"
