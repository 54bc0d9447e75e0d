"""/containers/{id}/exec and /exec/{id}/*: not served yet (a clear 501), so clients fail with a
message rather than a 404."""
from aiohttp import web

from pyctr.api.errors import ApiError


class Exec:
    def __init__(self, service):
        self.svc = service

    def routes(self, add):
        add("POST", "/containers/{id}/exec", self.unsupported)
        add("POST", "/exec/{id}/start", self.unsupported)
        add("POST", "/exec/{id}/resize", self.unsupported)
        add("GET", "/exec/{id}/json", self.unsupported)

    async def unsupported(self, request) -> web.Response:
        raise ApiError(501, "exec is not served by the pyctr API yet (use `pyctr exec`)")
