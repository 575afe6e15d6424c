"""The preview page as an ASGI app (Starlette): the page, a JSON API, the catalog's
images, and server-sent events that announce each reload of the catalog directory.

A file watcher (watchfiles, inotify) reloads the catalog when anything under it
changes; every open page gets a ``catalog`` event and asks for its view again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import anyio
from sse_starlette.sse import EventSourceResponse
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from watchfiles import awatch

from .state import PreviewError, PreviewState

log = logging.getLogger("sigfilter.admin")

STATIC = Path(__file__).parent / "static"
# Changes closer together than this are one reload (an editor's save is often several
# writes); small enough that a saved template shows well within a second.
DEBOUNCE_MS = 150
WATCH_STEP_MS = 50
MAX_MESSAGE_BYTES = 25 * 1024 * 1024  # a dropped message; larger ones are refused (413)
SSE_PING_SECONDS = 15
# Signature HTML is sanitized by the catalog code and shown in a sandboxed frame; the
# policy also keeps it from loading anything from elsewhere (no tracking pixels, no
# remote fonts) and the page from being framed by another site.
CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self'; frame-ancestors 'none'; form-action 'none'; base-uri 'none'"
)


class Broadcast:
    """Catalog versions to every open event stream (one queue per stream)."""

    def __init__(self) -> None:
        self._queues: set[asyncio.Queue[int]] = set()

    def publish(self, version: int) -> None:
        for queue in self._queues:
            queue.put_nowait(version)

    @contextlib.contextmanager
    def subscribe(self) -> Any:
        queue: asyncio.Queue[int] = asyncio.Queue()
        self._queues.add(queue)
        try:
            yield queue
        finally:
            self._queues.discard(queue)


class CatalogWatcher:
    """Reloads the catalog when a file under it changes and tells the open pages."""

    def __init__(self, state: PreviewState, broadcast: Broadcast) -> None:
        self.state = state
        self.broadcast = broadcast

    async def watch(self, stop: anyio.Event) -> None:
        verifying: asyncio.Task[None] | None = None
        try:
            async for changes in awatch(
                self.state.root, stop_event=stop, debounce=DEBOUNCE_MS, step=WATCH_STEP_MS
            ):
                snap = await anyio.to_thread.run_sync(self.state.reload)
                log.info("reloaded after %d change(s): version %d, %d problem(s)",
                         len(changes), snap.version, len(snap.problems))  # fmt: skip
                self.broadcast.publish(snap.version)
                if verifying is None or verifying.done():
                    verifying = asyncio.create_task(self.verify_latest())
        finally:
            if verifying is not None:
                verifying.cancel()

    async def verify_latest(self) -> None:
        """Render every user of the newest snapshot, as catalog check does; problems only
        a render finds (an image a template names for some users) come as a new version.
        Runs beside the watcher, so the next save is shown without waiting for it."""
        for _ in range(1000):  # bounded: a newer save restarts the work, at most so often
            failed = await anyio.to_thread.run_sync(self.state.verify, abandon_on_cancel=True)
            if failed is not None:
                log.info("version %d: %d problem(s)", failed.version, len(failed.problems))
                self.broadcast.publish(failed.version)
            if self.state.current.verified:
                return

    @contextlib.asynccontextmanager
    async def lifespan(self, _: Starlette) -> AsyncIterator[None]:
        stop = anyio.Event()
        task = asyncio.create_task(self.watch(stop))
        try:
            yield
        finally:
            stop.set()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(task, 5)
            log.info("stopped")


def create_app(state: PreviewState, allowed_hosts: list[str]) -> Starlette:
    broadcast = Broadcast()
    watcher = CatalogWatcher(state, broadcast)
    routes = [
        Route("/", lambda _: FileResponse(STATIC / "index.html")),
        Route("/favicon.ico", lambda _: Response(status_code=204)),
        Route("/api/catalog", _handler(lambda r: state.summary())),
        Route("/api/render", _handler(lambda r: state.render(*_params(r))), name="render"),
        Route("/api/sign", _sign(state), methods=["POST"]),
        Route("/images/{tenant}/{name}", _image(state)),
        Route("/events", _events(state, broadcast)),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    middleware = [Middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts)]
    app = Starlette(routes=routes, middleware=middleware, lifespan=watcher.lifespan)
    app.add_middleware(_Headers)
    return app


def _params(request: Request) -> tuple[str, str, str, str, str]:
    q = request.query_params
    return (q.get("tenant", ""), q.get("user", ""), q.get("variant", "new"),
            q.get("scope", "external"), q.get("date", ""))  # fmt: skip


def _handler(fn: Callable[[Request], dict[str, Any]]) -> Callable[[Request], Any]:
    async def endpoint(request: Request) -> Response:
        try:
            return JSONResponse(await anyio.to_thread.run_sync(fn, request))
        except PreviewError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)

    return endpoint


def _sign(state: PreviewState) -> Callable[[Request], Any]:
    async def endpoint(request: Request) -> Response:
        raw = bytearray()
        async for chunk in request.stream():
            raw += chunk
            if len(raw) > MAX_MESSAGE_BYTES:
                return JSONResponse({"error": "message too large"}, status_code=413)
        q = request.query_params
        args = (bytes(raw), q.get("sender", ""), q.get("mode", ""), q.get("date", ""))
        try:
            return JSONResponse(await anyio.to_thread.run_sync(state.sign, *args))
        except PreviewError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)

    return endpoint


def _image(state: PreviewState) -> Callable[[Request], Any]:
    async def endpoint(request: Request) -> Response:
        try:
            data, ctype = state.image(request.path_params["tenant"], request.path_params["name"])
        except PreviewError as exc:
            return JSONResponse({"error": str(exc)}, status_code=404)
        return Response(data, media_type=ctype)

    return endpoint


def _events(state: PreviewState, broadcast: Broadcast) -> Callable[[Request], Any]:
    async def endpoint(request: Request) -> Response:
        async def stream() -> AsyncIterator[dict[str, str]]:
            with broadcast.subscribe() as queue:
                yield _event(state.current.version, state)
                while True:
                    version = await queue.get()
                    yield _event(version, state)

        return EventSourceResponse(stream(), ping=SSE_PING_SECONDS)

    return endpoint


def _event(version: int, state: PreviewState) -> dict[str, str]:
    data = {"version": version, "problems": len(state.current.problems)}
    return {"event": "catalog", "data": json.dumps(data)}


class _Headers:
    """Security headers on every answer (a raw ASGI middleware: no buffering of SSE)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [
                    (b"content-security-policy", CSP.encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer"),
                    (b"cache-control", b"no-store"),
                ]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
