"""Correlation IDs and access lines: an ASGI middleware around the Quart app.

It runs before Quart, so the ID is bound (``structlog.contextvars``, key
``correlation_id``) for every task Quart starts for the request, echoed on
every response (errors included, and the WebSocket handshake), and written on
the one access line logged when the request or socket ends.

It also turns the server cancelling a request (the graceful timeout ran out)
into a client disconnect: Quart runs each request in tasks of its own and
leaves them running when its caller is cancelled, so a run would outlive the
server; a disconnect is what Quart knows how to cancel.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

import anyio
import attrs
import structlog

from assistant_service.adapters.correlation import bound_correlation_id, is_valid_correlation_id

HEADER = "X-Correlation-ID"
SCOPE_KEY = "assistant_service.correlation_id"


Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
# Quart and Hypercorn type their scopes as TypedDicts; the middleware passes them through.
ASGIApp = Callable[[Any, Any, Any], Awaitable[None]]

access_log = structlog.get_logger("assistant_service.access")


def new_correlation_id() -> str:
    return uuid.uuid4().hex


def from_headers(headers: list[tuple[bytes, bytes]]) -> str:
    """The client's ID when it sent a valid one, else a new one."""
    wanted = HEADER.lower().encode()
    for name, value in headers:
        if name.lower() == wanted:
            text = value.decode("latin-1").strip()
            if is_valid_correlation_id(text):
                return text
    return new_correlation_id()


def correlation_id_of(scope: Mapping[str, object]) -> str:
    """The ID the middleware put in ``scope`` (a new one when it did not run)."""
    value = scope.get(SCOPE_KEY)
    return value if isinstance(value, str) else new_correlation_id()


@attrs.define
class CorrelationMiddleware:
    """Wraps an ASGI app: binds, echoes and logs the correlation ID of each request.

    When ``stopping`` is set (the graceful timeout ran out), requests still open
    are ended as a client disconnect would end them. Hypercorn does this itself
    before Python 3.12; from 3.12 on its shutdown waits for every connection to
    close first (hypercorn issue #308), so the app must let go on its own.
    """

    app: ASGIApp
    stopping: anyio.Event | None = None
    # The requests in flight, and those ended because ``stopping`` was set: one
    # watcher ends them all, rather than a task group and a task per request.
    _open: set[asyncio.Task[Any]] = attrs.field(factory=set, init=False)
    _ended: set[asyncio.Task[Any]] = attrs.field(factory=set, init=False)
    _watcher: asyncio.Task[None] | None = attrs.field(default=None, init=False)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in {"http", "websocket"}:
            await self.app(scope, receive, send)
            return
        correlation_id = from_headers(list(scope.get("headers", [])))
        scope = {**scope, SCOPE_KEY: correlation_id}
        header = (HEADER.lower().encode(), correlation_id.encode())
        status: int | None = None
        started = time.perf_counter()

        async def send_with_header(message: Message) -> None:
            nonlocal status
            kind = message["type"]
            if kind in {"http.response.start", "websocket.http.response.start"}:
                status = int(message["status"])
                message["headers"] = [*message.get("headers", []), header]
            elif kind == "websocket.accept":
                status = 101
                message["headers"] = [*message.get("headers", []), header]
            elif kind == "websocket.close" and status is None:
                status = 403  # closed before the handshake: the server refused it
            await send(message)

        with bound_correlation_id(correlation_id):
            try:
                await self._call_until_stopping(scope, receive, send_with_header)
            except Exception:
                status = status or 500
                raise
            finally:
                access_log.info(
                    "request",
                    method=scope.get("method", "GET"),
                    path=scope.get("path", ""),
                    protocol=scope["type"],
                    # Nothing sent and nothing raised: the client left first (nginx's 499).
                    status=status or 499,
                    duration_ms=round((time.perf_counter() - started) * 1000, 1),
                )

    async def _call_until_stopping(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.stopping is None:
            await _disconnect_on_cancel(self.app, scope, receive, send)
            return
        task = asyncio.current_task()
        if task is None:  # pragma: no cover -- ASGI servers call apps in tasks
            raise RuntimeError("the correlation middleware must run in a task")
        self._watch(self.stopping)
        self._open.add(task)
        try:
            if self.stopping.is_set():
                self._end(task)  # came after the others were ended: ended the same way
            await _disconnect_on_cancel(self.app, scope, receive, send)
        except asyncio.CancelledError:
            if task not in self._ended:
                raise
            # Our own cancellation, and it is handled: the request ended as a disconnect.
            if hasattr(task, "uncancel"):
                task.uncancel()
        finally:
            self._open.discard(task)
            self._ended.discard(task)

    def _watch(self, stopping: anyio.Event) -> None:
        """Start the one task that ends every open request once ``stopping`` is set."""
        watcher = self._watcher
        if watcher is None or watcher.get_loop() is not asyncio.get_running_loop():
            self._watcher = asyncio.ensure_future(self._end_all_when(stopping))

    async def _end_all_when(self, stopping: anyio.Event) -> None:
        await stopping.wait()
        for task in list(self._open):
            self._end(task)

    def _end(self, task: asyncio.Task[Any]) -> None:
        self._ended.add(task)
        task.cancel()


# How long a cancelled request waits for the app to finish its disconnect.
_LET_GO_SECONDS = 5.0


async def _disconnect_on_cancel(app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
    """Call ``app``; if this task is cancelled, end the app's request as a disconnect would.

    Quart reads ``receive`` in a task of its own and, on a disconnect message,
    cancels the request's handler. So the reader is interrupted and handed the
    disconnect message Quart knows (every Quart version handles it the same
    way); it costs no task per message.
    """
    reader: asyncio.Task[Any] | None = None
    letting_go = False
    disconnect: Message = {
        "type": "websocket.disconnect" if scope["type"] == "websocket" else "http.disconnect",
        "code": 1012,  # service restart
    }

    async def tracked_receive() -> Message:
        nonlocal reader
        reader = asyncio.current_task()
        try:
            return await receive()
        except asyncio.CancelledError:
            if not letting_go:
                raise
            if reader is not None and hasattr(reader, "uncancel"):
                reader.uncancel()  # this cancellation was ours, and it is handled
            return disconnect

    inner = asyncio.ensure_future(app(scope, tracked_receive, send))
    try:
        await asyncio.shield(inner)
    except asyncio.CancelledError:
        letting_go = True
        (reader if reader is not None and not reader.done() else inner).cancel()
        # Shielded: an anyio scope that cancelled us would cancel this wait too,
        # and the run must be cancelled before the request lets go. Bounded, in
        # case the app ignores the disconnect.
        with anyio.move_on_after(_LET_GO_SECONDS, shield=True):
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(inner)
        if not inner.done():
            inner.cancel()
        raise
