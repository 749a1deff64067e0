"""What the edge needs from the composition root."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import attrs

from assistant_service.application.circuit_breaker import CircuitBreaker
from assistant_service.application.service import AssistantService
from assistant_service.entrypoints.http.auth import ApiKeys
from assistant_service.entrypoints.observability import Observability
from assistant_service.entrypoints.settings import Settings
from assistant_service.ports.config import AssistantConfigRepository
from assistant_service.ports.conversations import StateStoreHealth
from assistant_service.ports.secrets import SecretRepository
from assistant_service.ports.tokens import OneTimeTokens

if TYPE_CHECKING:
    # Only the server has limits: the module needs the ``limits`` library.
    from assistant_service.entrypoints.http.throttle import EdgeLimits

Closer = Callable[[], Awaitable[object]]


@attrs.frozen
class Services:
    """The assistant service and what readiness checks: configs, secrets, state store, settings.

    ``required_secrets`` names the secrets that must be readable for the
    service to be ready (in production, the OpenAI key). ``closers`` release
    what the composition root opened (the shared OpenAI client) when the app
    stops serving.
    """

    assistant: AssistantService
    configs: AssistantConfigRepository
    secrets: SecretRepository
    settings: Settings
    # The shared state store, when there is one to check (Redis, Firestore, memory).
    state: StateStoreHealth | None = None
    required_secrets: tuple[str, ...] = ()
    closers: tuple[Closer, ...] = ()
    # Metrics and traces: the observer the assistant reports to, and what the edge serves.
    observability: Observability = Observability()
    # API_KEYS: when set, every route but /healthz and /readyz needs one.
    api_keys: ApiKeys | None = None
    # RATE_LIMIT and the keys' rate_limit and daily_tokens: None when none is set.
    limits: EdgeLimits | None = None
    # Where WebSocket tickets are kept: the shared state store, so that any
    # instance redeems them (None: this process's memory).
    tokens: OneTimeTokens | None = None
    # The model server's circuit breaker (none offline): /readyz shows its state.
    breaker: CircuitBreaker | None = None
