"""HTTP routes: start a conversation, chat (JSON or server-sent events), history, health."""

from __future__ import annotations

import structlog
from quart import Quart, Response, request

from assistant_service.domain.errors import InvalidInputError
from assistant_service.entrypoints.http.access import check_thread, current_key, owner_metadata
from assistant_service.entrypoints.http.codec import (
    ChatRequest,
    history_body,
    parse_chat_request,
    parse_history_query,
)
from assistant_service.entrypoints.http.errors import ShuttingDownError
from assistant_service.entrypoints.http.health import breakers, readiness
from assistant_service.entrypoints.http.runs import json_response, register_run_routes, start_chat
from assistant_service.entrypoints.http.services import Services
from assistant_service.entrypoints.http.state import EdgeState

log = structlog.get_logger(__name__)

MAX_ASSISTANT_ID_LENGTH = 128


def check_message_length(chat: ChatRequest, limit: int) -> None:
    # The profile has its own limit; this one bounds what the edge accepts at all.
    if len(chat.message) > limit:
        raise InvalidInputError(
            "the message is too long",
            {"message": f"at most {limit} characters, got {len(chat.message)}"},
        )


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
        metadata = await owner_metadata(services, assistant_id)
        thread_id = await services.assistant.start_conversation(assistant_id, metadata or None)
        log.info("conversation.started")
        return json_response({"thread_id": thread_id})

    @app.get("/assistants")
    async def assistants() -> Response:
        default = services.assistant.default_assistant_id
        key = current_key()
        # A key sees the assistants it may use, no others (their tools included).
        profiles = sorted(
            (p for p in await services.configs.list() if key is None or key.may_use(p.id)),
            key=lambda profile: profile.id,
        )
        body = [
            {
                "id": profile.id,
                "model": profile.model,
                "tools": list(profile.tools),
                "approval_required": list(profile.approval_required),
                "default": profile.id == default,
            }
            for profile in profiles
        ]
        return json_response({"assistants": body})

    @app.post("/chat")
    async def chat() -> Response:
        if state.draining.is_set():
            raise ShuttingDownError("the server is shutting down; retry shortly")
        chat = parse_chat_request(await request.get_data(cache=False))
        check_message_length(chat, settings.max_message_length)
        structlog.contextvars.bind_contextvars(thread_id=chat.thread_id)
        await check_thread(services, chat.thread_id)
        return await start_chat(app, services, state, chat)

    register_run_routes(app, services, state)

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
        body: dict[str, object] = {
            "status": "ready" if ready else "unavailable",
            "checks": checks,
        }
        states = breakers(services)
        if states:
            body["breakers"] = states
        return json_response(body, 200 if ready else 503)
