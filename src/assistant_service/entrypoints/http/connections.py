"""Connections as a whole: clients that stop reading are dropped; a socket's end is known at once.

:class:`ConnectionGuard` wraps the app (outermost, so it sees the server's own
``send``). Every message the app sends must be taken by the server within
``send_timeout`` seconds. The server takes a message when the client's TCP
window has room for it (Hypercorn awaits the transport's drain), so a client
that does not read its event stream or socket holds the handler, its run and
its run slot for as long as it likes. Past the timeout the guard drops the
connection (an HTTP/1 connection is aborted: nothing more is flushed to a
client that is not reading) and raises :class:`ClientNotReadingError` into the
handler, which ends as it does when a client leaves.

The guard also marks, for the server's WebSocket pings, when a socket's app has
ended: Hypercorn's ping loop sleeps a whole interval between pings and holds
its connection (the socket, buffers, the app's scope) until it wakes. The
server's worker sleeps through :func:`ping_sleep`, which ends with the app.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import socket
import struct
from collections.abc import Callable
from functools import partial
from typing import Any

import anyio
import attrs
import structlog

from assistant_service.entrypoints.http.correlation import ASGIApp, Message, Receive, Scope, Send

log = structlog.get_logger(__name__)

# One TCP connection, as Hypercorn writes it in the scope: (client, server) addresses.
Address = tuple[str, int]
ConnectionKey = tuple[Address, Address]

# Set while a WebSocket's app runs (in the tasks Hypercorn starts from it, such
# as the ping loop); set() when the app has ended.
_socket_ended: contextvars.ContextVar[asyncio.Event | None] = contextvars.ContextVar(
    "assistant_service_socket_ended", default=None
)


class ClientNotReadingError(Exception):
    """The client took nothing of what was sent for ``send_timeout`` seconds; it was dropped."""


@attrs.define
class Connections:
    """The open HTTP/1 connections of one server, to abort one by its scope, or all.

    Filled by the server (see ``entrypoints.worker``); empty under another
    server, where :meth:`abort` does nothing and the server ends the connection
    in its own time.
    """

    _open: dict[ConnectionKey, asyncio.BaseTransport] = attrs.field(factory=dict, init=False)

    def __len__(self) -> int:
        return len(self._open)

    def add(self, key: ConnectionKey, transport: asyncio.BaseTransport) -> None:
        self._open[key] = transport

    def discard(self, key: ConnectionKey, transport: asyncio.BaseTransport) -> None:
        # Only this transport's entry: a later connection may have the same addresses.
        if self._open.get(key) is transport:
            del self._open[key]

    def abort(self, scope: Scope) -> bool:
        """Drop the connection of ``scope`` without flushing what is buffered; False if unknown.

        HTTP/2 connections carry other clients' streams: they are never aborted
        for one stream (Hypercorn resets the stream when its handler ends).
        """
        if str(scope.get("http_version", "1.1")) not in {"1.0", "1.1"}:
            return False
        key = key_of(scope)
        transport = None if key is None else self._open.pop(key, None)
        if transport is None:
            return False
        _abort(transport)
        return True

    def abort_all(self) -> int:
        """Drop every connection still open (shutdown, past its grace); how many there were."""
        transports = list(self._open.values())
        self._open.clear()
        for transport in transports:
            _abort(transport)
        return len(transports)


def _abort(transport: asyncio.BaseTransport) -> None:
    sock = transport.get_extra_info("socket")
    if sock is not None:
        # Linger 0: the close resets the connection and the kernel frees what the
        # client left unread at once (a plain close would keep trying to deliver it).
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    abort: Callable[[], None] | None = getattr(transport, "abort", None)
    if abort is not None:
        abort()  # the server sees a lost connection: handlers get their disconnect
    else:
        transport.close()


def key_of(scope: Scope) -> ConnectionKey | None:
    client, server = scope.get("client"), scope.get("server")
    if not client or not server:
        return None
    return (str(client[0]), int(client[1])), (str(server[0]), int(server[1]))


def connection_key(peer: Any, local: Any) -> ConnectionKey | None:
    """The key of a TCP connection from its socket's addresses (IPv4 or IPv6), as in the scope."""
    if not isinstance(peer, tuple) or not isinstance(local, tuple):
        return None  # a Unix socket: no addresses in the scope either
    return (str(peer[0]), int(peer[1])), (str(local[0]), int(local[1]))


@attrs.define
class ConnectionGuard:
    """Outermost ASGI middleware: bounds each send by ``send_timeout``; marks a socket's end."""

    app: ASGIApp
    connections: Connections
    send_timeout: float

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in {"http", "websocket"}:
            await self.app(scope, receive, send)
            return
        watch = _SendWatch(scope, self.connections, self.send_timeout)
        ended = asyncio.Event() if kind == "websocket" else None
        token = _socket_ended.set(ended)
        try:
            await self.app(scope, receive, partial(watch.send, send))
        except Exception as error:
            # Raised by the watch where the app did not handle it (Quart's own
            # sends), perhaps in a task group's exception group: the client is
            # gone, which is no error of the server's.
            if not (watch.dropped and _only_not_reading(error)):
                raise
        finally:
            watch.close()
            _socket_ended.reset(token)
            if ended is not None:
                ended.set()


@attrs.define(eq=False)
class _SendWatch:
    """The sends in flight on one request or socket, and one timer that checks on them.

    One timer per request, re-armed when it fires, rather than a timeout around
    each send: sends are many (every event of a stream) and must stay cheap.
    """

    scope: Scope
    connections: Connections
    timeout: float
    dropped: bool = False
    _since: float | None = None  # when the oldest send in flight began
    _senders: list[asyncio.Task[Any]] = attrs.field(factory=list)
    _cancelled: bool = False
    _loop: asyncio.AbstractEventLoop = attrs.field(factory=asyncio.get_running_loop)
    _timer: asyncio.TimerHandle | None = None

    async def send(self, send: Send, message: Message) -> None:
        if self.dropped:
            raise ClientNotReadingError("the client was dropped: it did not read")
        if self._timer is None:
            # Armed here, in the handler's context: the drop's log line carries
            # the request's correlation id.
            self._timer = self._loop.call_later(self.timeout, self._check)
        task = asyncio.current_task()
        if not self._senders:
            self._since = self._loop.time()
        if task is not None:
            self._senders.append(task)
        try:
            await send(message)
        except asyncio.CancelledError:
            if not (self._cancelled and task is not None and task in self._senders):
                raise
            # Cancelled by _drop (the connection could not be aborted): a drop.
            if hasattr(task, "uncancel"):
                task.uncancel()
        finally:
            if task is not None and task in self._senders:
                self._senders.remove(task)
            # The next send in flight, if any, is timed from now: a little late at worst.
            self._since = self._loop.time() if self._senders else None
        if self.dropped:
            raise ClientNotReadingError(f"the client read nothing for {self.timeout} s")

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _check(self) -> None:
        now = self._loop.time()
        since = self._since
        if since is not None and now - since >= self.timeout:
            self._drop()  # the timer stays spent: nothing more is sent
            return
        delay = self.timeout if since is None else since + self.timeout - now
        self._timer = self._loop.call_later(delay, self._check)

    def _drop(self) -> None:
        self.dropped = True
        # The server sees the connection lost: the send in flight returns, and
        # the handler gets its disconnect.
        aborted = self.connections.abort(self.scope)
        log.warning(
            "client.not_reading",
            protocol=self.scope["type"],
            path=self.scope.get("path", ""),
            send_timeout=self.timeout,
            aborted=aborted,
        )
        if not aborted:
            # Under another server, or on HTTP/2: end the sends themselves.
            self._cancelled = True
            for task in self._senders:
                task.cancel()


def _only_not_reading(error: BaseException) -> bool:
    if isinstance(error, ClientNotReadingError):
        return True
    # An exception group (the builtin, or its backport on Python 3.10).
    inner = getattr(error, "exceptions", None)
    return isinstance(inner, tuple) and bool(inner) and all(map(_only_not_reading, inner))


async def ping_sleep(seconds: float) -> None:
    """Sleep between a WebSocket's pings; ends the ping loop once the socket's app has ended.

    Hypercorn's loop checks whether its socket is closed only after each sleep;
    raising ``CancelledError`` ends the ping task as if it had been cancelled,
    which the connection's task group takes quietly.
    """
    ended = _socket_ended.get()
    if ended is None:
        await asyncio.sleep(seconds)
        return
    with anyio.move_on_after(seconds):
        await ended.wait()
    if ended.is_set():
        raise asyncio.CancelledError
