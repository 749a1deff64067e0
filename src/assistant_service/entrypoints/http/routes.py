"""HTTP routes: start a conversation, chat (JSON or server-sent events), history, health."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

import structlog
from quart import Quart, Response, request

from assistant_service.domain.errors import AssistantServiceError, InvalidInputError
from assistant_service.entrypoints.http.codec import (
    ChatRequest,
    dumps,
    error_event,
    event_payload,
    history_body,
    internal_error_event,
    parse_chat_request,
    parse_history_query,
    result_body,
)
from assistant_service.entrypoints.http.errors import UnavailableError, correlation_id
from assistant_service.entrypoints.http.health import readiness
from assistant_service.entrypoints.http.services import Services
from assistant_service.entrypoints.http.state import EdgeState

log = structlog.get_logger(__name__)

MAX_ASSISTANT_ID_LENGTH = 128


def json_response(body: Any, status: int = 200) -> Response:
    return Response(dumps(body), status=status, content_type="application/json")


def check_message_length(chat: ChatRequest, limit: int) -> None:
    # The profile has its own limit; this one bounds what the edge accepts at all.
    if len(chat.message) > limit:
        raise InvalidInputError(
            "the message is too long",
            {"message": f"at most {limit} characters, got {len(chat.message)}"},
        )


def wants_event_stream(accept: str) -> bool:
    return "text/event-stream" in accept.lower()


def register_routes(app: Quart, services: Services, state: EdgeState) -> None:
    settings = services.settings

    @app.get("/start")
    async def start() -> Response:
        assistant_id = request.args.get("assistant_id") or None
        if assistant_id is not None and len(assistant_id) > MAX_ASSISTANT_ID_LENGTH:
            raise InvalidInputError(
                "invalid assistant id",
                {"assistant_id": f"at most {MAX_ASSISTANT_ID_LENGTH} characters"},
            )
        thread_id = await services.assistant.start_conversation(assistant_id)
        log.info("conversation.started")
        return json_response({"thread_id": thread_id})

    @app.post("/chat")
    async def chat() -> Response:
        if state.draining.is_set():
            raise UnavailableError("the server is shutting down")
        chat = parse_chat_request(await request.get_data(cache=False))
        check_message_length(chat, settings.max_message_length)
        structlog.contextvars.bind_contextvars(thread_id=chat.thread_id)
        if wants_event_stream(request.headers.get("Accept", "")):
            return await _event_stream(services, state, chat)
        state.slots.acquire()
        try:
            result = await services.assistant.chat(chat.thread_id, chat.message)
        finally:
            state.slots.release()
        return json_response(result_body(result))

    @app.get("/threads/<thread_id>/messages")
    async def messages(thread_id: str) -> Response:
        query = parse_history_query(request.args.to_dict(flat=False))
        page = await services.assistant.history_page(
            thread_id, limit=query.limit, cursor=query.cursor
        )
        return json_response(history_body(thread_id, page))

    @app.get("/healthz")
    async def healthz() -> Response:
        return json_response({"status": "ok"})

    @app.get("/readyz")
    async def readyz() -> Response:
        ready, checks = await readiness(services, state)
        body = {"status": "ready" if ready else "unavailable", "checks": checks}
        return json_response(body, 200 if ready else 503)


async def _event_stream(services: Services, state: EdgeState, chat: ChatRequest) -> Response:
    """Open the run first, so errors before it (404, 409, 422, 503) keep their status."""
    state.slots.acquire()
    events = services.assistant.stream(chat.thread_id, chat.message)
    try:
        first = await anext(events)
    except BaseException:
        state.slots.release()
        await events.aclose()
        raise
    cid = correlation_id()

    async def body() -> AsyncIterator[bytes]:
        try:
            async with aclosing(events):
                yield _sse(event_payload(first, cid))
                async for event in events:
                    yield _sse(event_payload(event, cid))
        except AssistantServiceError as error:
            yield _sse(error_event(error, cid))
        except Exception:
            log.exception("stream.failed")
            yield _sse(internal_error_event(cid))
        finally:
            state.slots.release()

    response = Response(body(), status=200, content_type="text/event-stream")
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Accel-Buffering"] = "no"
    # Quart's RESPONSE_TIMEOUT would cut a long run silently; runs bound themselves.
    response.timeout = None
    return response


def _sse(payload: dict[str, Any]) -> bytes:
    return f"event: {payload['type']}\ndata: {dumps(payload)}\n\n".encode()
