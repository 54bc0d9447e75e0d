"""The service: an aiohttp application on a unix socket (or the socket systemd passes, LISTEN_FDS),
every route also under /v{version}/, blocking store work in worker threads, and the idle exit
(--time, podman's rule: no request in flight and none for that many seconds).

aiohttp rather than http.server: HTTP/1.1 keep-alive, chunked request bodies (cp's PUT, load, build
contexts) and chunked responses come from a maintained parser; a hijacked attach/exec connection is
taken from it as a socket of our own (stream.hijack)."""
import asyncio
import concurrent.futures
import logging
import os
import signal
import socket
import sys
import threading
import time

from aiohttp import web

from pyctr.api import errors

SD_LISTEN_FDS_START = 3


class Service:
    def __init__(self, ctx):
        self.ctx = ctx
        # attach relays, log follows and waits hold a thread each: more than the default pool
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=128, thread_name_prefix="pyctr-api")
        self.active = 0
        self.last = time.monotonic()
        self.relays = set()

    async def run(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self.pool, fn, *args)

    def spawn(self, fn, *args):
        """A long-lived blocking relay (attach, exec): counted as activity while it runs."""
        def body():
            try:
                fn(*args)
            except Exception:
                errors.log.exception("relay failed")
            finally:
                self.relays.discard(t)
                self.last = time.monotonic()
        t = threading.Thread(target=body, name="pyctr-api-relay", daemon=True)
        self.relays.add(t)
        t.start()

    def images_store(self):
        from pyctr.image.store import Store
        return Store(self.ctx.root, allow_devices=self.ctx.allow_devices)

    def busy(self):
        return self.active > 0 or bool(self.relays)


def build_app(service):
    from pyctr.api.containers import Containers
    from pyctr.api.exec import Exec
    from pyctr.api.images import Images
    from pyctr.api.system import System
    from pyctr.api.volumes import Networks, Volumes

    @web.middleware
    async def activity(request, handler):
        service.active += 1
        try:
            return await handler(request)
        finally:
            service.active -= 1
            service.last = time.monotonic()

    app = web.Application(middlewares=[activity, errors.errors_middleware], client_max_size=0)

    def add(method, path, handler):
        app.router.add_route(method, path, handler)
        app.router.add_route(method, r"/v{version:[0-9]+\.[0-9]+}" + path, handler)

    for group in (System, Containers, Exec, Images, Volumes, Networks):
        obj = group(service)
        obj.routes(add)
        if group is Containers:
            service.containers = obj
    return app


def _listener(path):
    """systemd's socket (LISTEN_PID = us, LISTEN_FDS >= 1), else a new socket at path."""
    if os.environ.get("LISTEN_PID") == str(os.getpid()) and int(os.environ.get("LISTEN_FDS") or 0) >= 1:
        for k in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
            os.environ.pop(k, None)
        s = socket.socket(fileno=SD_LISTEN_FDS_START)
        s.set_inheritable(False)
        return s, None
    os.makedirs(os.path.dirname(os.path.abspath(path)), mode=0o755, exist_ok=True)
    try:
        if socket.socket(socket.AF_UNIX).connect_ex(path) == 0:
            from pyctr.errors import PyctrError
            raise PyctrError(f"{path}: another service is listening there")
        os.unlink(path)
    except FileNotFoundError:
        pass
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    old = os.umask(0o177)   # root's API: the socket is 0600, as podman's
    try:
        s.bind(path)
    finally:
        os.umask(old)
    s.listen(128)
    return s, path


def serve(ctx, path, idle):
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="pyctr service: %(message)s")
    sock, made = _listener(path)
    service = Service(ctx)
    app = build_app(service)

    async def main():
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.SockSite(runner, sock)
        await site.start()
        try:
            while not stop.is_set():
                try:
                    await asyncio.wait_for(stop.wait(), timeout=min(idle, 0.5) if idle else None)
                except asyncio.TimeoutError:
                    pass
                if idle and not service.busy() and time.monotonic() - service.last >= idle:
                    break
        finally:
            if made:
                try:
                    os.unlink(made)
                except OSError:
                    pass
            await runner.cleanup()
            for conns in service.containers.pending.values():
                for conn, _ in conns:
                    conn.close()
    try:
        asyncio.run(main())
    finally:
        service.pool.shutdown(wait=False, cancel_futures=True)
    return 0
