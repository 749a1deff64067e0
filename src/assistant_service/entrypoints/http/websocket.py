"""``/stream``: chat over a WebSocket, one JSON object per run event.

The client sends ``{"thread_id", "message"}`` text frames, one run at a time
per socket. A bad frame (binary, not JSON, wrong fields, too long, unknown
thread, a frame while a run is active) gets an ``error`` event and the socket
stays usable. A client that disconnects cancels its run and the run's tools.
A socket silent for ``ws_idle_timeout`` seconds with no run is closed (1001),
which reaps peers that vanished without closing; so are idle sockets when the
server starts shutting down, after their run finishes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import aclosing
from typing import Any

import anyio
import attrs
import structlog

from assistant_service.domain.errors import AssistantServiceError, ConflictError
from assistant_service.entrypoints.http.codec import (
    ChatRequest,
    MalformedRequestError,
    dumps,
    error_event,
    event_payload,
    internal_error_event,
    parse_chat_request,
)
from assistant_service.entrypoints.http.errors import PayloadTooLargeError, UnavailableError
from assistant_service.entrypoints.http.routes import check_message_length
from assistant_service.entrypoints.http.services import Services
from assistant_service.entrypoints.http.state import EdgeState

log = structlog.get_logger(__name__)

GOING_AWAY = 1001


@attrs.define
class SocketSession:
    """One WebSocket connection: reads frames, runs one chat at a time, streams its events."""

    _services: Services = attrs.field(alias="services")
    _state: EdgeState = attrs.field(alias="state")
    _receive: Callable[[], Awaitable[str | bytes | None]] = attrs.field(alias="receive")
    _send: Callable[[str], Awaitable[None]] = attrs.field(alias="send")
    _close: Callable[[int, str], Awaitable[None]] = attrs.field(alias="close")
    _correlation_id: str = attrs.field(alias="correlation_id")
    _busy: bool = attrs.field(default=False, init=False)
    _idle_since: float = attrs.field(factory=anyio.current_time, init=False)
    _run_finished: anyio.Event = attrs.field(factory=anyio.Event, init=False)

    async def serve(self) -> None:
        """Serve until the client leaves, the socket idles out or the server drains."""
        async with anyio.create_task_group() as group:
            group.start_soon(self._close_when_idle_or_draining, group.cancel_scope)
            while True:
                frame = await self._receive()
                self._idle_since = anyio.current_time()
                try:
                    chat = self._accept_frame(frame)
                except AssistantServiceError as error:
                    await self._emit(error_event(error, self._correlation_id))
                    continue
                self._busy = True
                self._run_finished = anyio.Event()
                group.start_soon(self._run, chat.thread_id, chat.message)

    def _accept_frame(self, frame: str | bytes | None) -> ChatRequest:
        """Check a frame and take a run slot; raises the error its event will carry."""
        settings = self._services.settings
        if not isinstance(frame, str):
            raise MalformedRequestError("send JSON text frames; binary frames are not accepted")
        if len(frame.encode("utf-8", "surrogatepass")) > settings.max_ws_message_bytes:
            raise PayloadTooLargeError(
                f"a frame may hold at most {settings.max_ws_message_bytes} bytes"
            )
        if self._state.draining.is_set():
            raise UnavailableError("the server is shutting down")
        if self._busy:
            raise ConflictError(
                "a run is already active on this socket; wait for run.completed or error"
            )
        chat = parse_chat_request(frame)
        check_message_length(chat, settings.max_message_length)
        self._state.slots.acquire()
        return chat

    async def _run(self, thread_id: str, message: str) -> None:
        structlog.contextvars.bind_contextvars(thread_id=thread_id)
        try:
            async with aclosing(self._services.assistant.stream(thread_id, message)) as events:
                async for event in events:
                    await self._emit(event_payload(event, self._correlation_id))
        except AssistantServiceError as error:
            await self._emit(error_event(error, self._correlation_id))
        except Exception:
            log.exception("run.unexpected_error")
            await self._emit(internal_error_event(self._correlation_id))
        finally:
            self._state.slots.release()
            self._busy = False
            self._idle_since = anyio.current_time()
            self._run_finished.set()

    async def _emit(self, payload: dict[str, Any]) -> None:
        await self._send(dumps(payload))

    async def _close_when_idle_or_draining(self, scope: anyio.CancelScope) -> None:
        # One watcher per socket (idle sockets are many: each task costs memory).
        timeout = self._services.settings.ws_idle_timeout
        while True:
            with anyio.move_on_after(self._idle_since + timeout - anyio.current_time()):
                await self._state.draining.wait()
            if self._busy:
                await self._run_finished.wait()
            elif self._state.draining.is_set():
                reason = "server shutting down"
                break
            elif anyio.current_time() >= self._idle_since + timeout:
                reason = "idle timeout"
                break
        log.info("websocket.closing", reason=reason)
        await self._close(GOING_AWAY, reason)
        scope.cancel()
