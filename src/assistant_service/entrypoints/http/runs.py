"""Steering runs over HTTP: cancel, approvals, replayed events, background runs; SSE bodies.

Routes (under ``/threads/<thread_id>/runs/<run_id>``): ``POST .../cancel``,
``POST .../approvals``, ``GET .../events`` (SSE, resumable with
``Last-Event-ID`` or ``?after=N``) and ``GET`` for the run's status.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from typing import Any

import structlog
from quart import Quart, Response, request

from assistant_service.application.service import result_of
from assistant_service.domain.errors import AssistantServiceError, InvalidInputError
from assistant_service.domain.events import RunEvent
from assistant_service.entrypoints.http.codec import (
    ChatRequest,
    dumps_bytes,
    error_event,
    event_payload,
    internal_error_event,
    parse_approvals,
    result_body,
    run_body,
    run_error_event,
)
from assistant_service.entrypoints.http.errors import ShuttingDownError, correlation_id
from assistant_service.entrypoints.http.services import Services
from assistant_service.entrypoints.http.state import EdgeState

log = structlog.get_logger(__name__)

_SEQ = re.compile(r"[0-9]{1,12}")
RUN = "/threads/<thread_id>/runs/<run_id>"


def json_response(body: Any, status: int = 200) -> Response:
    return Response(dumps_bytes(body), status=status, content_type="application/json")


def wants_event_stream(accept: str) -> bool:
    return "text/event-stream" in accept.lower()


def register_run_routes(app: Quart, services: Services, state: EdgeState) -> None:
    assistant = services.assistant

    @app.post(f"{RUN}/cancel")
    async def cancel(thread_id: str, run_id: str) -> Response:
        await assistant.cancel(thread_id, run_id)
        log.info("run.cancel_requested", run_id=run_id)
        return json_response({"run_id": run_id, "status": "cancelling"}, 202)

    @app.get(RUN)
    async def run(thread_id: str, run_id: str) -> Response:
        return json_response(run_body(await assistant.run(thread_id, run_id)))

    @app.post(f"{RUN}/approvals")
    async def approvals(thread_id: str, run_id: str) -> Response:
        body = parse_approvals(await request.get_data(cache=False))
        decisions = body.domain_decisions()
        if wants_event_stream(request.headers.get("Accept", "")):
            with state.slots.held_while_starting() as slot:
                events = assistant.decide(thread_id, run_id, decisions)
                first = await _first(events)
                slot.keep()
            return sse_response(_primed(first, events), state, slot=True)
        state.slots.acquire()
        try:
            result = await state.until_runs_end(
                lambda: assistant.approve(thread_id, run_id, decisions)
            )
        finally:
            state.slots.release()
        return json_response(result_body(result))

    @app.get(f"{RUN}/events")
    async def events(thread_id: str, run_id: str) -> Response:
        after = _after(request.args.getlist("after"), request.headers.get("Last-Event-ID"))
        await assistant.run(thread_id, run_id)  # 404 before the stream starts
        return sse_response(assistant.events(thread_id, run_id, after=after), state, slot=False)


async def start_chat(
    app: Quart, services: Services, state: EdgeState, chat: ChatRequest
) -> Response:
    """``POST /chat``: JSON or SSE, at once or in the background, cancelled or not on disconnect."""
    assistant = services.assistant
    streamed = wants_event_stream(request.headers.get("Accept", ""))
    if chat.background or chat.on_disconnect == "continue":
        # The run is driven by a background task: a client that leaves only stops following it.
        with state.slots.held_while_starting() as slot:
            run_id = await assistant.submit(
                chat.thread_id, chat.message, start_soon=background_runner(app, state)
            )
            slot.keep()
        if chat.background:
            body = {"thread_id": chat.thread_id, "run_id": run_id, "status": "in_progress"}
            return json_response(body, 202)
        followed = assistant.events(chat.thread_id, run_id)
        if streamed:
            return sse_response(followed, state, slot=False)
        return json_response(result_body(await state.until_runs_end(lambda: result_of(followed))))
    if streamed:
        with state.slots.held_while_starting() as slot:
            events = assistant.stream(chat.thread_id, chat.message)
            first = await _first(events)
            slot.keep()
        return sse_response(_primed(first, events), state, slot=True)
    state.slots.acquire()
    try:
        result = await state.until_runs_end(lambda: assistant.chat(chat.thread_id, chat.message))
    finally:
        state.slots.release()
    return json_response(result_body(result))


# Events produced while the previous ones are still being sent wait at most this
# many; past it, the run waits for the client (as it did with one write per event).
SSE_BACKLOG = 64


def sse_response(
    events: AsyncGenerator[RunEvent, None], state: EdgeState, *, slot: bool
) -> Response:
    """A ``text/event-stream`` of ``events``, each with ``id: <seq>``; errors end it as events.

    With ``slot``, the stream holds one run slot, released when the run ends.
    When the server's graceful timeout runs out first, the stream ends with an
    ``error`` event (``shutting_down``), after the events already produced.
    """
    stream = _EventStream(events, correlation_id(), state, slot=slot)
    response = Response(stream.body(), status=200, content_type="text/event-stream")
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Accel-Buffering"] = "no"
    # Quart's RESPONSE_TIMEOUT would cut a long run silently; runs bound themselves.
    response.timeout = None
    return response


class _EventStream:
    """An SSE body that sends, in one write, every event produced since the last write.

    The run is driven by a task of its own: a step whose events arrive together
    (the model's answer in one read) costs one write, not one per event, and no
    event waits for another to be sent. At most ``SSE_BACKLOG`` events wait;
    past that the run waits for the client, as it did with one write per event.
    """

    def __init__(
        self, events: AsyncGenerator[RunEvent, None], cid: str, state: EdgeState, *, slot: bool
    ) -> None:
        self._events = events
        self._cid = cid
        self._state = state
        self._slot = slot
        self._run_id: str | None = None
        self._pending: list[bytes] = []
        self._ready = asyncio.Event()  # something to send, or the run ended
        self._room = asyncio.Event()  # the backlog has room
        self._room.set()
        self._ended = False

    async def body(self) -> AsyncIterator[bytes]:
        producer = asyncio.create_task(self._produce())
        try:
            while self._pending or not self._ended:
                if not self._pending:
                    self._ready.clear()
                    await self._ready.wait()
                    continue
                chunk = b"".join(self._pending)
                self._pending.clear()
                self._room.set()
                yield chunk
            await producer  # its own errors, if any
        finally:
            # The client left (or the server stops): the run is cancelled, as before.
            if not producer.done():
                producer.cancel()
                await asyncio.wait({producer})
            if self._slot:
                self._state.slots.release()

    async def _produce(self) -> None:
        try:
            await self._state.until_runs_end(self._relay)
        except ShuttingDownError as error:
            # Past the backlog's bound by one event: the run is over, nothing follows.
            log.info("stream.shutting_down", run_id=self._run_id)
            self._push(run_error_event(error, self._cid, self._run_id))
        finally:
            self._ended = True
            self._ready.set()

    async def _relay(self) -> None:
        cid = self._cid
        try:
            async with aclosing(self._events):
                async for event in self._events:
                    self._run_id = getattr(event, "run_id", None) or self._run_id
                    await self._out(event_payload(event, cid))
        except AssistantServiceError as error:
            await self._out(error_event(error, cid))
        except Exception:
            log.exception("stream.failed")
            await self._out(internal_error_event(cid))

    def _push(self, payload: dict[str, Any]) -> None:
        self._pending.append(_sse(payload))
        self._ready.set()

    async def _out(self, payload: dict[str, Any]) -> None:
        self._push(payload)
        if len(self._pending) >= SSE_BACKLOG:
            self._room.clear()
            await self._room.wait()


def _sse(payload: dict[str, Any]) -> bytes:
    seq = payload.get("seq")
    event_id = f"id: {seq}\n" if seq else ""
    return f"{event_id}event: {payload['type']}\ndata: ".encode() + dumps_bytes(payload) + b"\n\n"


async def _first(events: AsyncGenerator[RunEvent, None]) -> RunEvent:
    """Open the run, so errors before it (404, 409, 422, 503) keep their status."""
    try:
        return await anext(events)
    except BaseException:
        await events.aclose()
        raise


async def _primed(
    first: RunEvent, rest: AsyncGenerator[RunEvent, None]
) -> AsyncGenerator[RunEvent, None]:
    async with aclosing(rest):
        yield first
        async for event in rest:
            yield event


def background_runner(app: Quart, state: EdgeState) -> Callable[..., None]:
    """Start a run in the app's background tasks; it frees its run slot when it ends."""

    def start_soon(function: Callable[..., Awaitable[object]], *args: Any) -> None:
        async def run() -> None:
            try:
                await state.until_runs_end(lambda: function(*args))
            except ShuttingDownError:
                # Cancelled like any run past the graceful timeout: recorded as interrupted.
                log.info("run.stopped_by_shutdown")
            finally:
                state.slots.release()

        app.add_background_task(run)

    return start_soon


def _after(values: list[str], last_event_id: str | None) -> int:
    """``?after=N`` (or the ``Last-Event-ID`` header): the last ``seq`` the client has."""
    if len(values) > 1:
        raise InvalidInputError("invalid query parameters", {"after": "given more than once"})
    raw = values[0] if values else (last_event_id or "0").strip()
    if not _SEQ.fullmatch(raw):
        name = "after" if values else "Last-Event-ID"
        raise InvalidInputError("invalid event number", {name: "must be a whole number, 0 or more"})
    return int(raw)
