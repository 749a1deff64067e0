"""API keys at the edge: who is calling, what they may use, which threads are theirs.

``API_KEYS`` (or the secret ``API_KEYS_SECRET`` names) is a JSON array of
``{"id", "key" | "key_sha256", "assistants"?, "rate_limit"?, "daily_tokens"?}``.
Keys are kept as SHA-256 digests and compared in constant time. A thread
belongs to the key that started it (its id is in the conversation's metadata);
to any other key it does not exist. Browsers, which cannot set headers on a
WebSocket, trade their key for a short-lived single-use ticket.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Mapping
from typing import Any, Protocol

import attrs

from assistant_service.domain.errors import (
    AssistantServiceError,
    ConfigurationError,
    NotFoundError,
)
from assistant_service.domain.secrets import hold_secret
from assistant_service.ports.tokens import OneTimeTokens

# The conversation metadata key that names the API key that started it.
OWNER_KEY = "api_key_id"
TICKET_TTL = 30.0
TICKET_PREFIX = "wst_"
_MAX_TICKET_LENGTH = 128
_SHA256_HEX = frozenset("0123456789abcdef")


class UnauthenticatedError(AssistantServiceError):
    """No API key, or one that is not known (HTTP 401 with ``WWW-Authenticate: Bearer``)."""

    code = "unauthenticated"


class ForbiddenError(AssistantServiceError):
    """The API key may not use this assistant (HTTP 403)."""

    code = "forbidden"


@attrs.frozen(repr=False)
class ApiKey:
    """One client's key: its id, the digest of its key, and what it may do."""

    id: str
    sha256: bytes
    assistants: frozenset[str] | None = None
    rate_limit: str | None = None
    daily_tokens: int | None = None

    def may_use(self, assistant_id: str) -> bool:
        return self.assistants is None or assistant_id in self.assistants

    def __repr__(self) -> str:
        return f"ApiKey({self.id!r})"


@attrs.frozen
class ApiKeys:
    """The keys the service accepts."""

    keys: tuple[ApiKey, ...]

    def authenticate(self, presented: str) -> ApiKey | None:
        """The key ``presented`` is, or ``None``; every digest is compared, in constant time."""
        digest = hashlib.sha256(presented.encode("utf-8", "surrogatepass")).digest()
        found = None
        for key in self.keys:
            if hmac.compare_digest(digest, key.sha256):
                found = key
        return found

    @classmethod
    def parse(cls, raw: str) -> ApiKeys:
        """Keys from their JSON text; raises ``ConfigurationError`` naming the entry at fault.

        Each plain ``key`` is held for masking (it never shows in a log or a body).
        """
        try:
            entries = json.loads(raw)
        except ValueError:
            raise ConfigurationError("API_KEYS: not valid JSON (a JSON array of keys)") from None
        if not isinstance(entries, list) or not entries:
            raise ConfigurationError("API_KEYS: expected a non-empty JSON array of keys")
        keys = [_key(i, entry) for i, entry in enumerate(entries)]
        ids = [k.id for k in keys]
        if len(set(ids)) != len(ids):
            raise ConfigurationError("API_KEYS: two keys have the same id")
        return cls(tuple(keys))


_FIELDS = frozenset({"id", "key", "key_sha256", "assistants", "rate_limit", "daily_tokens"})


def _key(index: int, entry: Any) -> ApiKey:  # noqa: C901 -- one check per field
    where = f"API_KEYS[{index}]"
    if not isinstance(entry, dict):
        raise ConfigurationError(f"{where}: expected an object")
    unknown = sorted(set(entry) - _FIELDS)
    if unknown:
        raise ConfigurationError(f"{where}: unknown fields {', '.join(unknown)}")
    key_id = entry.get("id")
    if not isinstance(key_id, str) or not key_id or len(key_id) > 64:
        raise ConfigurationError(f"{where}: id must be a string of 1 to 64 characters")
    plain, digest = entry.get("key"), entry.get("key_sha256")
    if (plain is None) == (digest is None):
        raise ConfigurationError(f"{where} ({key_id}): give exactly one of key, key_sha256")
    if plain is not None:
        if not isinstance(plain, str) or len(plain) < 16:
            raise ConfigurationError(f"{where} ({key_id}): key must be 16 characters or more")
        hold_secret(plain)
        sha256 = hashlib.sha256(plain.encode()).digest()
    else:
        if not isinstance(digest, str) or len(digest) != 64 or set(digest) - _SHA256_HEX:
            raise ConfigurationError(f"{where} ({key_id}): key_sha256 must be 64 lowercase hex")
        sha256 = bytes.fromhex(digest)
    assistants = entry.get("assistants")
    if assistants is not None and (
        not isinstance(assistants, list) or not all(isinstance(a, str) for a in assistants)
    ):
        raise ConfigurationError(f"{where} ({key_id}): assistants must be a list of ids")
    rate_limit = entry.get("rate_limit")
    if rate_limit is not None:
        _check_rate_limit(f"{where} ({key_id})", rate_limit)
    daily = entry.get("daily_tokens")
    if daily is not None and (not isinstance(daily, int) or isinstance(daily, bool) or daily < 1):
        raise ConfigurationError(f"{where} ({key_id}): daily_tokens must be a positive integer")
    return ApiKey(
        id=key_id,
        sha256=sha256,
        assistants=None if assistants is None else frozenset(assistants),
        rate_limit=rate_limit,
        daily_tokens=daily,
    )


def _check_rate_limit(where: str, rate_limit: object) -> None:
    if not isinstance(rate_limit, str):
        raise ConfigurationError(f'{where}: rate_limit must be like "60/minute"')
    try:
        # The server extra's, like the rest of the edge; imported when a key has a limit.
        from assistant_service.entrypoints.http.limiting import parse_rate_limit  # noqa: PLC0415
    except ImportError:
        raise ConfigurationError(
            f"{where}: rate_limit needs the server extra: pip install 'assistant-service[server]'"
        ) from None
    try:
        parse_rate_limit(rate_limit)
    except ValueError as error:
        raise ConfigurationError(f"{where}: rate_limit: {error}") from None


class Headers(Protocol):
    """What :func:`presented_key` reads: Werkzeug's ``Headers``, or a plain mapping."""

    def get(self, key: str, default: str, /) -> str: ...


def presented_key(headers: Headers) -> str | None:
    """The key in ``Authorization: Bearer <key>`` or ``X-API-Key``, if any."""
    authorization = headers.get("Authorization", "")
    scheme, _, credentials = authorization.strip().partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return headers.get("X-API-Key", "").strip() or None


@attrs.define
class WebSocketTickets:
    """Single-use tickets for opening a WebSocket, each good for ``ttl`` seconds (30 at most).

    Kept in the shared state store, so a ticket issued by one instance opens a
    socket on any other. The store holds a SHA-256 digest of each ticket,
    never the ticket: a dump of it opens no socket.
    """

    store: OneTimeTokens
    ttl: float = attrs.field(
        default=TICKET_TTL, validator=[attrs.validators.gt(0), attrs.validators.le(TICKET_TTL)]
    )

    async def issue(self, key_id: str) -> str:
        """A new ticket for the key ``key_id``."""
        ticket = TICKET_PREFIX + secrets.token_urlsafe(32)
        await self.store.put_token(_ticket_digest(ticket), key_id, self.ttl)
        return ticket

    async def redeem(self, ticket: str) -> str | None:
        """The key id the ticket was issued to, once; ``None`` when unknown, used or expired."""
        if not ticket.startswith(TICKET_PREFIX) or len(ticket) > _MAX_TICKET_LENGTH:
            return None  # not one of ours: no need to ask the store
        return await self.store.take_token(_ticket_digest(ticket))


def _ticket_digest(ticket: str) -> str:
    # Namespaced: the store's one-time tokens may serve other purposes too.
    return "ws_ticket." + hashlib.sha256(ticket.encode()).hexdigest()


def check_owner(metadata: Mapping[str, str], key: ApiKey | None, thread_id: str) -> None:
    """Raise ``NotFoundError`` unless ``key`` started the thread (or keys are off)."""
    if key is not None and metadata.get(OWNER_KEY) != key.id:
        raise NotFoundError("conversation", thread_id)
