"""The edge's limits on requests and sockets: rate limits and token budgets.

Every API request counts against its caller's rate limit (see
:mod:`~assistant_service.entrypoints.http.limiting`), but the health checks,
``/metrics`` and the pages with their assets. A WebSocket counts at its
handshake and again for each frame that opens a stream (``message``,
``approvals``, ``resume``); ``cancel`` frames never count (stopping a run is
always allowed). Requests that start or continue a run (``POST /chat``,
``POST .../approvals``, a ``message`` or ``approvals`` frame) are refused while
the key's token budget is used up (see
:mod:`~assistant_service.entrypoints.http.budgets`).

The caller is the API key when keys are on, else the client's address (see
:mod:`~assistant_service.entrypoints.http.client_address`). Responses of
limited requests carry ``RateLimit-Limit``, ``-Remaining`` and ``-Reset``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs
import structlog
from quart import Quart, Response, g, request, websocket

from assistant_service.application.observing import combine
from assistant_service.entrypoints.http.access import (
    OPEN_PAGE_PREFIX,
    OPEN_PAGES,
    OPEN_PATHS,
    current_key,
)
from assistant_service.entrypoints.http.budgets import TokenBudgets, charge_runs_to
from assistant_service.entrypoints.http.client_address import (
    IPNetwork,
    client_address,
    client_identity,
)
from assistant_service.entrypoints.http.limiting import RequestLimiter
from assistant_service.entrypoints.http.observing import METRICS_PATH
from assistant_service.entrypoints.http.refusals import Quota, TooManyRequestsError
from assistant_service.ports.observer import Observer

if TYPE_CHECKING:
    from assistant_service.entrypoints.http.services import Services

log = structlog.get_logger(__name__)

# The views that start or continue a run (their function names in routes.py and runs.py).
RUN_STARTING_ENDPOINTS = frozenset({"chat", "approvals"})
_UNCOUNTED = OPEN_PATHS | OPEN_PAGES | {METRICS_PATH}


@attrs.frozen
class EdgeLimits:
    """What the edge enforces: request limits, token budgets, which proxies to believe.

    ``requests`` is ``None`` when no limit is set (no ``RATE_LIMIT``, no key's
    ``rate_limit``); ``budgets`` when no key has ``daily_tokens``.
    """

    requests: RequestLimiter | None = None
    budgets: TokenBudgets | None = None
    trusted_proxies: tuple[IPNetwork, ...] = ()

    def observed_by(self, observer: Observer) -> Observer:
        """The assistant's observer: ``observer``, and the budgets' when there are budgets.

        Runs' usage reaches the budgets only through it: give it to the
        ``AssistantService`` the edge serves.
        """
        if self.budgets is None:
            return observer
        return combine([observer, self.budgets.observer()])

    async def close(self) -> None:
        """Write the usage not written yet (bounded); the storage's client is the store's."""
        if self.budgets is not None:
            await self.budgets.flush()


def counted(path: str) -> bool:
    """Whether a request to ``path`` counts against its caller's limits."""
    return path not in _UNCOUNTED and not path.startswith(OPEN_PAGE_PREFIX)


def register_limits(app: Quart, services: Services) -> None:
    """Count requests and sockets against their limits; register after the API-key check."""
    limits = services.limits
    if limits is None:
        return

    @app.before_request
    async def limit_request() -> None:
        if not counted(request.path):
            return
        identity = _identity(limits, request.scope, request.headers.getlist("X-Forwarded-For"))
        starts_run = request.endpoint in RUN_STARTING_ENDPOINTS
        g.limit_quota = await _count(services, identity, starts_run=starts_run)

    @app.after_request
    async def quota_headers(response: Response) -> Response:
        quota: Quota | None = g.get("limit_quota")
        if quota is not None and "RateLimit-Limit" not in response.headers:
            response.headers.update(quota.headers())
        return response

    @app.before_websocket
    async def limit_handshake() -> None:
        identity = _identity(limits, websocket.scope, websocket.headers.getlist("X-Forwarded-For"))
        g.limit_identity = identity
        await _count(services, identity, starts_run=False)

    @app.after_serving
    async def flush_usage() -> None:
        await limits.close()


async def admit_frame(services: Services, *, starts_run: bool) -> None:
    """Count a WebSocket frame that opens a stream against the socket's caller.

    ``starts_run``: the frame starts or continues a run (the budget applies).
    Raises :class:`TooManyRequestsError` (the frame's ``error`` event); does
    nothing when no limit is set.
    """
    if services.limits is not None:
        await _count(services, g.limit_identity, starts_run=starts_run)


async def _count(services: Services, identity: str, *, starts_run: bool) -> Quota | None:
    """Count a request of ``identity``; its quota, if a limit applies. Raises past a limit."""
    limits = services.limits
    assert limits is not None  # noqa: S101 -- only registered with limits
    key = current_key()
    quota = None
    try:
        if limits.requests is not None:
            item = limits.requests.limit_for(None if key is None else key.id)
            if item is not None:
                quota = await limits.requests.admit(identity, item)
        if starts_run and limits.budgets is not None and key is not None:
            await limits.budgets.check(key.id)
    except TooManyRequestsError as error:
        services.observability.observer.refused(error.code)
        log.info("request.refused", reason=error.code, retry_after=error.retry_after)
        if error.quota is None:
            error.quota = quota
        raise
    return quota


def _identity(limits: EdgeLimits, scope: Mapping[str, Any], forwarded_for: list[str]) -> str:
    """Whom a request counts against: its API key, else its client's address.

    Runs started from this request are charged to the key's budget from here on.
    """
    key = current_key()
    if key is not None:
        charge_runs_to(key.id)
        return f"key:{key.id}"
    peer = scope.get("client")
    host = peer[0] if isinstance(peer, (tuple, list)) and peer else None
    address = client_address(host, forwarded_for, limits.trusted_proxies)
    return f"ip:{client_identity(address)}"
