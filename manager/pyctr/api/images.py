"""/images/*: list, inspect, history, pull (images/create, as a JSON progress stream), push, tag,
DELETE, prune, get (docker-archive) and load, through pyctr.image.* and the CLI's functions."""
import asyncio
import json
from types import SimpleNamespace

from aiohttp import web

from pyctr.api import stream
from pyctr.api.errors import ApiError, boolean


class JsonLines:
    """A text stream (the pull's and push's progress lines) as Docker's JSON message stream."""

    def __init__(self, writer):
        self.writer, self.pending = writer, ""

    def write(self, text):
        self.pending += text
        *lines, self.pending = self.pending.split("\n")
        for line in lines:
            line = line.replace("\r", "").strip()
            if line:
                self.writer.write(json.dumps({"status": line}) + "\r\n")
        return len(text)

    def flush(self):
        pass

    def isatty(self):
        return False


class Images:
    def __init__(self, service):
        self.svc = service
        self.ctx = service.ctx

    def routes(self, add):
        add("GET", "/images/json", self.list)
        add("POST", "/images/create", self.pull)
        add("POST", "/images/prune", self.prune)
        add("GET", "/images/get", self.get)
        add("POST", "/images/load", self.load)
        add("GET", "/images/{name:.+}/json", self.inspect)
        add("GET", "/images/{name:.+}/history", self.history)
        add("POST", "/images/{name:.+}/tag", self.tag)
        add("POST", "/images/{name:.+}/push", self.push)
        add("GET", "/images/{name:.+}/get", self.get)
        add("DELETE", "/images/{name:.+}", self.delete)

    def _store(self):
        from pyctr.image.store import Store
        return Store(self.ctx.root, allow_devices=self.ctx.allow_devices)

    def _list(self):
        from pyctr.cli.images import _image_size
        from pyctr.container.listing import _epoch
        from pyctr.errors import PyctrError
        store = self._store()
        out = []
        for image_id in store.image_ids():
            try:
                cfg = store.config(image_id)
                size = _image_size(store, image_id)
            except PyctrError:
                continue  # a bad record: the CLI warns about it; the API lists the rest
            tags = store.tags_of(image_id)
            out.append({"Id": image_id, "ParentId": "", "RepoTags": [t for t in tags if "@" not in t] or None,
                        "RepoDigests": [t for t in tags if "@" in t] or None,
                        "Created": int(_epoch(cfg["created"])) if cfg.get("created") else 0,
                        "Size": size, "VirtualSize": size, "SharedSize": -1,
                        "Labels": (cfg.get("config") or {}).get("Labels") or {}, "Containers": -1})
        return out

    async def list(self, request):
        return web.json_response(await self.svc.run(self._list))

    async def inspect(self, request):
        from pyctr.cli.images import inspect_image

        def one():
            store = self._store()
            image_id = store.resolve(request.match_info["name"])
            obj = inspect_image(store, image_id, store.config(image_id))
            obj.pop("ManifestDigest", None)
            obj.pop("Unpacked", None)
            obj.setdefault("Parent", "")
            obj.setdefault("ContainerConfig", obj["Config"])
            obj.setdefault("DockerVersion", "")
            obj.setdefault("VirtualSize", obj["Size"])
            obj.setdefault("Metadata", {"LastTagTime": "0001-01-01T00:00:00Z"})
            return obj
        return web.json_response(await self.svc.run(one))

    async def history(self, request):
        from pyctr.container.listing import _epoch

        def hist():
            store = self._store()
            image_id = store.resolve(request.match_info["name"])
            cfg = store.config(image_id)
            rows = []
            for i, h in enumerate(reversed(cfg.get("history") or [])):
                rows.append({"Id": image_id if i == 0 else "<missing>",
                             "Created": int(_epoch(h["created"])) if h.get("created") else 0,
                             "CreatedBy": h.get("created_by", ""), "Tags": None, "Size": 0,
                             "Comment": h.get("comment", "")})
            return rows
        return web.json_response(await self.svc.run(hist))

    async def tag(self, request):
        from pyctr.image import reference
        repo = request.query.get("repo")
        if not repo:
            raise ApiError(400, "repository name must have at least one component")
        tag = request.query.get("tag") or "latest"

        def do():
            with self._store().lock() as store:
                store.tag(reference.parse(f"{repo}:{tag}"), store.resolve(request.match_info["name"]))
        await self.svc.run(do)
        return web.Response(status=201)

    async def delete(self, request):
        def do():
            with self._store().lock() as store:
                return store.remove_image(request.match_info["name"], force=boolean(request, "force"))
        done = await self.svc.run(do)
        return web.json_response([{action: what} for action, what in done])

    async def prune(self, request):
        def do():
            with self._store().lock() as store:
                return store.prune(all_images=False)
        done = await self.svc.run(do)
        return web.json_response({"ImagesDeleted": [{a: w} for a, w in done] or None, "SpaceReclaimed": 0})

    def _client(self, ref):
        from pyctr.cli.images import _client
        return _client(SimpleNamespace(insecure=False, authfile=None), ref)

    async def _progress(self, request, work):
        """Run work(out) with a JSON message stream; an error after the 200 is an errorDetail."""
        resp = await stream.chunked(request)
        w = stream.ThreadWriter(asyncio.get_running_loop(), resp)
        try:
            await self.svc.run(work, JsonLines(w))
        except (ConnectionError, asyncio.CancelledError):
            raise
        except Exception as e:
            from pyctr.errors import PyctrError
            msg = str(e) if isinstance(e, PyctrError) else "internal error"
            await resp.write((json.dumps({"errorDetail": {"message": msg}, "error": msg}) + "\r\n").encode())
        await resp.write_eof()
        return resp

    async def pull(self, request):
        from pyctr.image import reference
        from pyctr.image.pull import pull
        name = request.query.get("fromImage")
        if not name:
            raise ApiError(400, "fromImage is required (image import is not served)")
        tag = request.query.get("tag")
        full = name if not tag else (f"{name}@{tag}" if tag.startswith("sha256:") else f"{name}:{tag}")
        ref = await self.svc.run(reference.parse, full)   # a bad name is a 400 before the stream

        def work(out):
            with self._store().lock() as store:
                out.write(f"Pulling from {ref.familiar()}\n")
                image_id = pull(store, self._client(ref), ref, out=out, quiet=False)
            out.write(f"Digest: {image_id}\nStatus: Downloaded newer image for {ref.familiar()}\n")
        return await self._progress(request, work)

    async def push(self, request):
        from pyctr.image import reference
        from pyctr.image.push import push
        name = request.match_info["name"]
        tag = request.query.get("tag")
        full = f"{name}:{tag}" if tag else name
        ref = await self.svc.run(reference.parse, full)

        def work(out):
            with self._store().lock() as store:
                image_id = store.resolve(full)
                push(store, self._client(ref), image_id, ref, out=out, source=full)
        return await self._progress(request, work)

    async def get(self, request):
        import os
        import tempfile
        from pyctr.cli.images import cmd_save
        names = request.query.getall("names", []) or [request.match_info.get("name")]
        if not names or None in names:
            raise ApiError(400, "names is required")
        fd, path = tempfile.mkstemp(prefix="pyctr-api-save-", suffix=".tar")
        os.close(fd)
        try:
            await self.svc.run(cmd_save, SimpleNamespace(root=self.ctx.root, allow_device_nodes=self.ctx.allow_devices,
                                                         images=names, output=path, format="docker-archive"))
            resp = web.StreamResponse(headers={"Content-Type": "application/x-tar"})
            resp.enable_chunked_encoding()
            await resp.prepare(request)
            with open(path, "rb") as f:
                while True:
                    chunk = await self.svc.run(f.read, 1 << 20)
                    if not chunk:
                        break
                    await resp.write(chunk)
            await resp.write_eof()
            return resp
        finally:
            os.unlink(path)

    async def load(self, request):
        import os
        import tempfile
        from pyctr.cli.images import cmd_load
        fd, path = tempfile.mkstemp(prefix="pyctr-api-load-", suffix=".tar")
        try:
            with os.fdopen(fd, "wb") as f:
                async for chunk in request.content.iter_chunked(1 << 20):
                    await self.svc.run(f.write, chunk)
            import contextlib
            import io
            buf = io.StringIO()

            def do():
                with contextlib.redirect_stdout(buf):
                    cmd_load(SimpleNamespace(root=self.ctx.root, allow_device_nodes=self.ctx.allow_devices,
                                             input=path, quiet=False))
            await self.svc.run(do)
        finally:
            os.unlink(path)
        text = "".join(json.dumps({"stream": line + "\n"}) + "\r\n" for line in buf.getvalue().splitlines())
        return web.Response(text=text, content_type="application/json")
