"""pyctr's errors -> Docker's status codes and `{"message": ...}` bodies. An unexpected failure is
a 500 naming the endpoint, never Python's exception text."""
import json
import logging

from aiohttp import web

API_VERSION = "1.41"
MIN_API_VERSION = "1.12"
log = logging.getLogger("pyctr.api")


def error(status, message):
    return web.Response(status=status, text=json.dumps({"message": message}) + "\n",
                        content_type="application/json")


class ApiError(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


def status_of(e):
    from pyctr.container.errors import CommandError, ContainerError, NameConflict, NoSuchContainer, UnknownImage
    from pyctr.errors import ImageNotFound, InvalidReference, UsageError
    from pyctr.volume.errors import NoSuchVolume, VolumeInUse
    if isinstance(e, ApiError):
        return e.status
    if isinstance(e, (NoSuchContainer, ImageNotFound, UnknownImage, NoSuchVolume)):
        return 404
    if isinstance(e, (NameConflict, VolumeInUse)):
        return 409
    if isinstance(e, (InvalidReference, UsageError)):
        return 400
    if isinstance(e, CommandError):
        return 409
    if isinstance(e, ContainerError):
        return 400
    return 500


@web.middleware
async def errors_middleware(request, handler):
    from pyctr.errors import PyctrError
    try:
        return await handler(request)
    except web.HTTPException as e:
        if e.status >= 400 and e.content_type != "application/json":
            return error(e.status, e.reason if e.status != 404 else "page not found")
        raise
    except (ApiError, PyctrError) as e:
        return error(status_of(e), str(e))
    except (ConnectionError, OSError) as e:
        if isinstance(e, ConnectionError):
            raise  # the client left: nothing to answer
        return error(500, f"{request.method} {request.path}: {e.strerror or 'I/O error'}")
    except Exception:
        log.exception("internal error in %s %s", request.method, request.path)
        return error(500, f"internal error in {request.method} {request.path}")


async def body_json(request, required=False):
    """The request's JSON object (400 for anything else, as dockerd's decoder)."""
    raw = await request.read()
    if not raw.strip():
        if required:
            raise ApiError(400, "invalid JSON: empty body")
        return {}
    try:
        obj = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise ApiError(400, f"invalid JSON: {getattr(e, 'msg', 'malformed body')}") from None
    if not isinstance(obj, dict):
        raise ApiError(400, "invalid JSON: an object is expected")
    return obj


def boolean(request, name, default=False):
    v = request.query.get(name)
    if v is None:
        return default
    return v.strip().lower() not in ("", "0", "false", "no")


def integer(request, name, default=None):
    v = request.query.get(name)
    if v in (None, ""):
        return default
    try:
        return int(v)
    except ValueError:
        raise ApiError(400, f"invalid value for {name!r}: {v!r}") from None


def filters(request):
    """`filters` (JSON {"key": ["v", ...]} or the old {"key": {"v": true}}) -> ["key=v", ...]."""
    raw = request.query.get("filters")
    if not raw:
        return []
    try:
        obj = json.loads(raw)
    except ValueError:
        raise ApiError(400, "invalid filter: malformed JSON") from None
    if not isinstance(obj, dict):
        raise ApiError(400, "invalid filter: an object is expected")
    out = []
    for k, vals in obj.items():
        if isinstance(vals, dict):
            vals = [v for v, on in vals.items() if on]
        if not isinstance(vals, list) or not all(isinstance(v, str) for v in vals):
            raise ApiError(400, f"invalid filter {k!r}")
        out += [f"{k}={v}" for v in vals]
    return out
