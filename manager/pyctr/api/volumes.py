"""/volumes/*: list, create, inspect, DELETE, prune, through the volume store the CLI uses; and
/networks: the pseudo-networks pyctr has (none, host) until the bridge network lands."""
from aiohttp import web

from pyctr.api.errors import ApiError, body_json, boolean, filters


class Volumes:
    def __init__(self, service):
        self.svc = service
        self.ctx = service.ctx

    def routes(self, add):
        add("GET", "/volumes", self.list)
        add("POST", "/volumes/create", self.create)
        add("POST", "/volumes/prune", self.prune)
        add("GET", "/volumes/{name}", self.inspect)
        add("DELETE", "/volumes/{name}", self.delete)

    def _store(self):
        from pyctr.container.volumes import store
        return store(self.ctx)

    async def list(self, request):
        wanted = filters(request)
        vols = await self.svc.run(lambda: self._store().list(wanted))
        return web.json_response({"Volumes": vols, "Warnings": []})

    async def create(self, request):
        body = await body_json(request)
        for k in ("Labels", "DriverOpts"):
            if body.get(k) is not None and not isinstance(body[k], dict):
                raise ApiError(400, f"{k}: an object is expected")
        vol, created = await self.svc.run(lambda: self._store().create(
            body.get("Name") or None, body.get("Driver") or "local", body.get("Labels") or {},
            body.get("DriverOpts") or {}))
        return web.json_response(vol, status=201)

    async def inspect(self, request):
        return web.json_response(await self.svc.run(lambda: self._store().get(request.match_info["name"])))

    async def delete(self, request):
        await self.svc.run(lambda: self._store().remove(request.match_info["name"], force=boolean(request, "force")))
        return web.Response(status=204)

    async def prune(self, request):
        wanted = filters(request)
        removed, reclaimed = await self.svc.run(lambda: self._store().prune(wanted))
        return web.json_response({"VolumesDeleted": removed or None, "SpaceReclaimed": reclaimed})


PSEUDO_NETWORKS = ("none", "host")


def _network(name):
    return {"Name": name, "Id": name, "Created": "0001-01-01T00:00:00Z", "Scope": "local",
            "Driver": "null" if name == "none" else "host", "EnableIPv6": False,
            "IPAM": {"Driver": "default", "Options": None, "Config": []}, "Internal": False, "Attachable": False,
            "Ingress": False, "ConfigFrom": {"Network": ""}, "ConfigOnly": False, "Containers": {}, "Options": {},
            "Labels": {}}


class Networks:
    """pyctr has no networks of its own yet: `none` and `host` are listed; anything else is a
    clear error (compose's default project network is answered as `none`, see containers.py)."""

    def __init__(self, service):
        self.svc = service

    def routes(self, add):
        add("GET", "/networks", self.list)
        add("GET", "/networks/{id}", self.inspect)
        add("POST", "/networks/create", self.create)
        add("DELETE", "/networks/{id}", self.delete)
        add("POST", "/networks/{id}/connect", self.unsupported)
        add("POST", "/networks/{id}/disconnect", self.unsupported)
        add("POST", "/networks/prune", self.prune)

    async def list(self, request):
        return web.json_response([_network(n) for n in PSEUDO_NETWORKS])

    async def inspect(self, request):
        name = request.match_info["id"]
        if name not in PSEUDO_NETWORKS:
            raise ApiError(404, f"network {name} not found")
        return web.json_response(_network(name))

    async def create(self, request):
        body = await body_json(request, required=True)
        raise ApiError(501, f"network create {body.get('Name', '')}: pyctr has no user-defined networks yet "
                            f"(none, host and container:NAME)")

    async def delete(self, request):
        name = request.match_info["id"]
        if name in PSEUDO_NETWORKS:
            raise ApiError(403, f"{name} is a pre-defined network and cannot be removed")
        raise ApiError(404, f"network {name} not found")

    async def unsupported(self, request):
        raise ApiError(501, "pyctr has no user-defined networks yet: connect/disconnect are not supported")

    async def prune(self, request):
        return web.json_response({"NetworksDeleted": None})
