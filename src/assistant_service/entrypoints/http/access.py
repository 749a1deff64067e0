"""Who may call: the API-key check on every request and socket, tickets, thread ownership.

With ``API_KEYS`` unset everything here lets every request through.
"""

from __future__ import annotations

import structlog
from quart import Quart, Response, g, request, websocket

from assistant_service.entrypoints.http.auth import (
    OWNER_KEY,
    ApiKey,
    ForbiddenError,
    UnauthenticatedError,
    WebSocketTickets,
    check_owner,
    presented_key,
)
from assistant_service.entrypoints.http.runs import json_response
from assistant_service.entrypoints.http.services import Services

log = structlog.get_logger(__name__)

OPEN_PATHS = frozenset({"/healthz", "/readyz"})
# Pages and their assets hold no data: the playground asks for a key, then uses it.
OPEN_PAGES = frozenset({"/", "/docs", "/openapi.json"})
OPEN_PAGE_PREFIX = "/assets/"


def current_key() -> ApiKey | None:
    """The API key of the request or socket being served (``None`` when keys are off)."""
    key: ApiKey | None = g.get("api_key")
    return key


async def check_thread(services: Services, thread_id: str | None) -> None:
    """Raise ``NotFoundError`` when the caller's key did not start ``thread_id``."""
    key = current_key()
    if key is None or thread_id is None:
        return
    conversation = await services.assistant.conversation(thread_id)
    check_owner(conversation.metadata, key, thread_id)


async def check_run(services: Services, thread_id: str | None, run_id: str) -> None:
    """As :func:`check_thread`, for a run named with or without its thread."""
    if current_key() is None:
        return
    if thread_id is None:
        thread_id = (await services.assistant.run(None, run_id)).conversation_id
    await check_thread(services, thread_id)


async def owner_metadata(services: Services, assistant_id: str | None) -> dict[str, str]:
    """The metadata a new thread gets; ``ForbiddenError`` for an assistant the key may not use."""
    key = current_key()
    if key is None:
        return {}
    profile = await services.assistant.profile(assistant_id)
    if not key.may_use(profile.id):
        raise ForbiddenError(f"this API key may not use the assistant {profile.id!r}")
    return {OWNER_KEY: key.id}


def _authenticate(services: Services, key: str | None) -> ApiKey:
    assert services.api_keys is not None  # noqa: S101 -- only called when keys are on
    found = services.api_keys.authenticate(key) if key else None
    if found is None:
        log.info("auth.refused", reason="missing" if key is None else "unknown")
        services.observability.observer.refused(UnauthenticatedError.code)
        raise UnauthenticatedError(
            "an API key is required: in X-API-Key, or in Authorization with the scheme Bearer"
            if key is None
            else "the API key is not valid"
        )
    return found


def _bind(key: ApiKey) -> None:
    g.api_key = key
    structlog.contextvars.bind_contextvars(key_id=key.id)  # "api_key" names are redacted


def register_access(app: Quart, services: Services, tickets: WebSocketTickets) -> None:
    """Check the key of every request and socket, and serve ``POST /ws-tickets``."""
    if services.api_keys is None:
        return

    @app.before_request
    async def authenticate_request() -> None:
        if (
            request.path in OPEN_PATHS
            or request.path in OPEN_PAGES
            or request.path.startswith(OPEN_PAGE_PREFIX)
        ):
            return
        _bind(_authenticate(services, presented_key(request.headers)))
        thread_id = (request.view_args or {}).get("thread_id")
        if isinstance(thread_id, str):
            await check_thread(services, thread_id)

    @app.before_websocket
    async def authenticate_socket() -> None:
        ticket = websocket.args.get("ticket")
        if ticket is not None and presented_key(websocket.headers) is None:
            key_id = await tickets.redeem(ticket)
            assert services.api_keys is not None  # noqa: S101
            found = next((k for k in services.api_keys.keys if k.id == key_id), None)
            if found is None:
                log.info("auth.refused", reason="ticket")
                services.observability.observer.refused(UnauthenticatedError.code)
                raise UnauthenticatedError("the ticket is unknown, used or expired")
            _bind(found)
            return
        _bind(_authenticate(services, presented_key(websocket.headers)))

    @app.post("/ws-tickets")
    async def ws_ticket() -> Response:
        key = current_key()
        assert key is not None  # noqa: S101 -- authenticate_request ran
        ticket = await tickets.issue(key.id)
        log.info("ws_ticket.issued")
        return json_response({"ticket": ticket, "expires_in": tickets.ttl}, 201)
