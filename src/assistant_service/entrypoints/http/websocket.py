"""``/stream``: chat over a WebSocket, one JSON object per run event.

The client sends JSON text frames with a ``type`` (default ``message``):
``message`` (``{"thread_id", "message", "on_disconnect"?}``), ``approvals``
(``{"run_id", "decisions"}``: the continuing run streams here), ``resume``
(``{"run_id", "after"}``: replay, then follow) and ``cancel`` (``{"run_id"}``,
acknowledged with ``cancel.accepted``). One stream at a time per socket. A
frame may carry an ``id``; what answers the frame rather than belonging to a
run (a refusal, an acknowledgement) echoes it as ``frame_id`` and has no
``run_id``. A bad frame (binary, not JSON, wrong fields, too long, unknown
thread, a second stream, a rate limit or token budget reached) gets an ``error``
event and the socket stays usable.
A client that disconnects cancels its run and the run's tools, unless the
message said ``"on_disconnect": "continue"``.
A socket silent for ``ws_idle_timeout`` seconds with no run is closed (1001),
which reaps peers that vanished without closing; so are idle sockets when the
server starts shutting down, after their run finishes. A run still going when
the graceful timeout runs out ends with an ``error`` event (``shutting_down``),
then the socket is closed (1001). A client that reads nothing for
``send_timeout`` is dropped by the connection guard: the session ends as when
the client leaves.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import aclosing
from typing import Any

import anyio
import attrs
import structlog

from assistant_service.domain.errors import (
    AssistantServiceError,
    ConflictError,
    InvalidInputError,
)
from assistant_service.domain.events import RunEvent
from assistant_service.entrypoints.http.access import check_run, check_thread
from assistant_service.entrypoints.http.codec import (
    ApprovalsRequest,
    CancelFrame,
    ChatRequest,
    Frame,
    MalformedRequestError,
    ResumeFrame,
    dumps,
    error_event,
    event_payload,
    frame_id_of,
    internal_error_event,
    parse_frame,
    run_error_event,
)
from assistant_service.entrypoints.http.connections import ClientNotReadingError
from assistant_service.entrypoints.http.errors import PayloadTooLargeError, ShuttingDownError
from assistant_service.entrypoints.http.routes import check_message_length
from assistant_service.entrypoints.http.services import Services
from assistant_service.entrypoints.http.state import EdgeState
from assistant_service.entrypoints.http.throttle import admit_frame

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
    # Runs a run that outlives the socket (``on_disconnect: continue``).
    _start_soon: Callable[..., None] = attrs.field(alias="start_soon")
    _busy: bool = attrs.field(default=False, init=False)
    _slot_taken: bool = attrs.field(default=False, init=False)
    _idle_since: float = attrs.field(factory=anyio.current_time, init=False)
    _run_finished: anyio.Event = attrs.field(factory=anyio.Event, init=False)
    _run_id: str | None = attrs.field(default=None, init=False)
    _session: anyio.CancelScope | None = attrs.field(default=None, init=False)

    async def serve(self) -> None:
        """Serve until the client leaves or stops reading, the socket idles out or the server drains."""
        async with anyio.create_task_group() as group:
            self._session = group.cancel_scope
            group.start_soon(self._close_when_idle_or_draining, group.cancel_scope)
            while True:
                raw = await self._receive()
                self._idle_since = anyio.current_time()
                frame_id = frame_id_of(raw)
                try:
                    frame = self._accept_frame(raw)
                    await self._check_owner(frame)
                    if isinstance(frame, CancelFrame):
                        await self._cancel(frame)
                        continue
                    # Counts against the caller's rate limit; a run's start, against its budget.
                    await admit_frame(self._services, starts_run=not isinstance(frame, ResumeFrame))
                    events = self._events_for(frame)
                except AssistantServiceError as error:
                    if self._slot_taken:
                        self._release_slot()
                    await self._emit(error_event(error, self._correlation_id, frame_id))
                    continue
                self._busy = True
                self._run_finished = anyio.Event()
                group.start_soon(self._stream, events, frame_id)

    def _accept_frame(self, raw: str | bytes | None) -> Frame:
        """Check a frame; a stream frame takes a run slot. Raises the error its event carries."""
        settings = self._services.settings
        if not isinstance(raw, str):
            raise MalformedRequestError("send JSON text frames; binary frames are not accepted")
        if len(raw.encode("utf-8", "surrogatepass")) > settings.max_ws_message_bytes:
            raise PayloadTooLargeError(
                f"a frame may hold at most {settings.max_ws_message_bytes} bytes"
            )
        frame = parse_frame(raw)
        if isinstance(frame, CancelFrame):
            return frame
        if self._state.draining.is_set():
            raise ShuttingDownError("the server is shutting down; retry shortly")
        if self._busy:
            raise ConflictError(
                "a stream is already active on this socket; wait for its last event or error"
            )
        if isinstance(frame, ChatRequest):
            check_message_length(frame, settings.max_message_length)
        self._state.slots.acquire()
        self._slot_taken = True
        return frame

    async def _check_owner(self, frame: Frame) -> None:
        """``NotFoundError`` for a thread (or run) another API key started."""
        if isinstance(frame, ChatRequest):
            await check_thread(self._services, frame.thread_id)
        elif frame.run_id is not None:
            await check_run(self._services, frame.thread_id, frame.run_id)
        else:
            await check_thread(self._services, frame.thread_id)

    def _events_for(self, frame: Frame) -> AsyncGenerator[RunEvent, None]:
        assistant = self._services.assistant
        if isinstance(frame, ApprovalsRequest):
            if frame.run_id is None:
                raise InvalidInputError("invalid request fields", {"run_id": "required"})
            return assistant.decide(frame.thread_id, frame.run_id, frame.domain_decisions())
        if isinstance(frame, ResumeFrame):
            if frame.after < 0:
                raise InvalidInputError("invalid request fields", {"after": "must be 0 or more"})
            return assistant.events(frame.thread_id, frame.run_id, after=frame.after)
        assert isinstance(frame, ChatRequest)  # noqa: S101 -- the frames left
        structlog.contextvars.bind_contextvars(thread_id=frame.thread_id)
        if frame.on_disconnect == "continue":
            return self._followed(frame)
        return assistant.stream(frame.thread_id, frame.message)

    async def _followed(self, chat: ChatRequest) -> AsyncGenerator[RunEvent, None]:
        # Driven by a background task: the socket only follows it through the log.
        assistant = self._services.assistant
        # The background run holds a slot of its own (released when it ends).
        with self._state.slots.held_while_starting() as slot:
            run_id = await assistant.submit(
                chat.thread_id, chat.message, start_soon=self._start_soon
            )
            slot.keep()
        async with aclosing(assistant.events(chat.thread_id, run_id)) as events:
            async for event in events:
                yield event

    async def _cancel(self, frame: CancelFrame) -> None:
        await self._services.assistant.cancel(frame.thread_id, frame.run_id)
        ack = {"type": "cancel.accepted", "run_id": frame.run_id, "status": "cancelling"}
        if frame.id is not None:
            ack["frame_id"] = frame.id
        await self._emit({**ack, "correlation_id": self._correlation_id})

    async def _stream(self, events: AsyncGenerator[RunEvent, None], frame_id: str | None) -> None:
        self._run_id = None
        try:
            await self._state.until_runs_end(lambda: self._relay(events, frame_id))
        except ShuttingDownError as error:
            log.info("websocket.run_stopped_by_shutdown", run_id=self._run_id)
            await self._emit(run_error_event(error, self._correlation_id, self._run_id))
        finally:
            self._release_slot()
            self._busy = False
            self._idle_since = anyio.current_time()
            self._run_finished.set()

    async def _relay(self, events: AsyncGenerator[RunEvent, None], frame_id: str | None) -> None:
        try:
            async with aclosing(events):
                async for event in events:
                    self._run_id = getattr(event, "run_id", None) or self._run_id
                    await self._emit(event_payload(event, self._correlation_id))
        except AssistantServiceError as error:
            await self._emit(error_event(error, self._correlation_id, frame_id))
        except Exception:
            log.exception("run.unexpected_error")
            await self._emit(internal_error_event(self._correlation_id))

    def _release_slot(self) -> None:
        self._state.slots.release()
        self._slot_taken = False

    async def _emit(self, payload: dict[str, Any]) -> None:
        try:
            await self._send(dumps(payload))
        except ClientNotReadingError:
            # The guard dropped the client: end the session as a disconnect would
            # (the run is cancelled at its next step, its slot released).
            if self._session is not None:
                self._session.cancel()

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
