"""Hypercorn's asyncio worker loop, owned here for three things Hypercorn's own lacks.

``hypercorn.asyncio.run.worker_serve`` accepts connections and runs each with
Hypercorn's ``TCPServer``; so does :func:`serve_connections`, which also:

- registers each connection in :class:`Connections`, so the app can abort one
  (a client that does not read its stream) and shutdown can abort the rest,
  and fixes its kernel send buffer, so what a client leaves unread is bounded;
- sleeps WebSocket pings through :func:`ping_sleep`: Hypercorn's ping loop
  would hold a closed socket (and its memory) until its next ping, up to
  ``WS_PING_INTERVAL`` later, and make shutdown wait for it;
- times each idle keep-alive connection with one timer (:class:`_IdleTimer`)
  where Hypercorn starts two tasks per request and cancels them at the next;
- bounds shutdown: past the grace, what is still open is aborted, then
  cancelled, quietly (Hypercorn leaves it to ``asyncio.run``, which logs a
  traceback per connection on Python 3.11).

Plain HTTP over TCP only: the service binds no TLS or QUIC sockets.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import structlog
from hypercorn.asyncio.lifespan import Lifespan
from hypercorn.asyncio.tcp_server import TCPServer
from hypercorn.asyncio.worker_context import WorkerContext
from hypercorn.config import Config, Sockets
from hypercorn.typing import AppWrapper, LifespanState
from hypercorn.utils import repr_socket_addr

from assistant_service.entrypoints.http.connections import Connections, connection_key, ping_sleep
from assistant_service.entrypoints.http.state import EdgeState

log = structlog.get_logger(__name__)

# The kernel's send buffer of each connection (Linux doubles it for its
# bookkeeping). Ample for event streams and pages, even far away: it caps a
# connection at this much per round trip.
SEND_BUFFER_BYTES = 256 * 1024
# After the grace, how long aborted connections get to end by themselves
# (their handlers see a disconnect) before their tasks are cancelled.
ABORTED_SECONDS = 2.0


class _WorkerContext(WorkerContext):
    """Hypercorn's worker context, with pings that stop when their socket's app ends."""

    @staticmethod
    async def sleep(wait: float) -> None:
        await ping_sleep(wait)


async def serve_connections(
    app: AppWrapper,
    config: Config,
    *,
    sockets: Sockets,
    shutdown_trigger: Callable[[], Awaitable[object]],
    state: EdgeState,
) -> None:
    """Serve ``app`` on ``sockets`` until ``shutdown_trigger`` returns, then shut down.

    Connections are registered in ``state.connections``. Shutdown: stop
    accepting; wait up to ``config.graceful_timeout`` for the connections to
    end; then ``state.stop_now()``, abort every connection still open, give
    them ``ABORTED_SECONDS`` and cancel what remains; then run the app's
    lifespan shutdown.
    """
    loop = asyncio.get_running_loop()
    lifespan_state: LifespanState = {}
    lifespan = Lifespan(app, config, loop, lifespan_state)
    lifespan_task = loop.create_task(lifespan.handle_lifespan())
    await lifespan.wait_for_startup()
    if lifespan_task.done() and (error := lifespan_task.exception()) is not None:
        raise error

    acceptor = _Acceptor(app, config, lifespan_state, state.connections)
    servers = []
    for sock in sockets.insecure_sockets:
        servers.append(
            await asyncio.start_server(acceptor.serve, backlog=config.backlog, sock=sock)
        )
        # Hypercorn's own line, which operators and tests look for.
        bind = repr_socket_addr(sock.family, sock.getsockname())
        await config.log.info("Running on http://%s (CTRL + C to quit)", bind)
    try:
        await shutdown_trigger()
    finally:
        await acceptor.context.terminated.set()  # keep-alive connections close after a response
        acceptor.close_idle()  # and the idle ones now, as Hypercorn's idle tasks would
        for server in servers:
            server.close()
        await _end_connections(
            acceptor.tasks, config.graceful_timeout, state.connections, state.stop_now
        )
        for server in servers:
            # From Python 3.12 this waits for the server's connections too: bounded.
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(server.wait_closed(), ABORTED_SECONDS)
        await lifespan.wait_for_shutdown()
        lifespan_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await lifespan_task


@attrs.define
class _Acceptor:
    """Runs each accepted connection with Hypercorn's ``TCPServer``, registered while it lives."""

    app: AppWrapper
    config: Config
    lifespan_state: LifespanState
    connections: Connections
    context: _WorkerContext = attrs.field(factory=lambda: _WorkerContext(None))
    tasks: set[asyncio.Task[None]] = attrs.field(factory=set)
    idle: set[_IdleTimer] = attrs.field(factory=set)

    def close_idle(self) -> None:
        """Close every connection that is waiting for its next request."""
        for timer in list(self.idle):
            timer.expire()

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        sock = writer.get_extra_info("socket")
        key = None
        if sock is not None:
            key = connection_key(sock.getpeername(), sock.getsockname())
            # Fixed, so the kernel does not grow it (to 4 MiB by default): what a
            # client leaves unread stays bounded, in memory the container pays for.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)
        if key is not None:
            self.connections.add(key, writer.transport)
        loop = asyncio.get_running_loop()
        server = TCPServer(
            self.app, loop, self.config, self.context, self.lifespan_state, reader, writer
        )
        server.idle_task = _IdleTimer(server, self.idle)  # type: ignore[assignment]
        try:
            await server
        except asyncio.CancelledError:
            # Only shutdown cancels a connection, after aborting it: it is over.
            # Ending quietly keeps asyncio's stream callback from logging a traceback.
            pass
        finally:
            if key is not None:
                self.connections.discard(key, writer.transport)


class _IdleTimer:
    """``TCPServer.idle_task`` as one timer: it closes a connection left idle too long.

    Hypercorn's own restarts a task each time a keep-alive connection turns idle
    (``asyncio.wait_for`` starts a second one inside it) and cancels and awaits
    both when the next request comes: per request, four task switches and a
    timer. This one arms a timer (``keep_alive_timeout``) and disarms it. When it
    fires, or when the server terminates while the connection is idle
    (:meth:`_Acceptor.close_idle`), the connection is closed as Hypercorn's task
    would close it.
    """

    def __init__(self, server: TCPServer, idle: set[_IdleTimer]) -> None:
        self._server = server
        self._idle = idle
        self._handle: asyncio.TimerHandle | None = None
        self._task_group: Any = None

    async def restart(self, task_group: Any, _action: object) -> None:
        self._disarm()
        self._task_group = task_group
        if self._server.context.terminated.is_set():
            self.expire()
            return
        self._handle = self._server.loop.call_later(
            self._server.config.keep_alive_timeout, self.expire
        )
        self._idle.add(self)

    async def stop(self) -> None:
        self._disarm()

    def expire(self) -> None:
        self._disarm()
        if self._task_group is None:
            return
        close = _close_connection(self._server)
        try:
            self._task_group._task_group.create_task(close)  # noqa: SLF001 -- as Hypercorn does
        except RuntimeError:  # the connection's task group has ended: it is closing already
            close.close()

    def _disarm(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._idle.discard(self)


async def _close_connection(server: TCPServer) -> None:
    # Shielded, as in Hypercorn: the close runs to its end once begun.
    await asyncio.shield(server._initiate_server_close())  # noqa: SLF001 -- Hypercorn's own


async def _end_connections(
    tasks: set[asyncio.Task[None]],
    grace: float,
    connections: Connections,
    on_grace_over: Callable[[], None],
) -> None:
    if tasks:
        await asyncio.wait(set(tasks), timeout=grace)
    if not tasks:
        return
    on_grace_over()
    aborted = connections.abort_all()
    log.warning("server.connections_aborted", connections=aborted, tasks=len(tasks))
    await asyncio.wait(set(tasks), timeout=ABORTED_SECONDS)
    remaining = set(tasks)
    for task in remaining:
        task.cancel()
    if remaining:
        await asyncio.wait(remaining, timeout=ABORTED_SECONDS)
