"""The conversation-store port, and the health check of the store behind it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from assistant_service.domain.leases import Lease
from assistant_service.domain.models import Conversation


class ConversationStore(Protocol):
    """Conversations and their history, for backends that keep none themselves.

    Items are JSON-compatible mappings in the backend's own format (chat
    messages, response input items); the store keeps them in order and never
    interprets them. ``get``, ``items`` and ``append`` raise ``NotFoundError``
    for an unknown id. A store may bound a history: it then keeps the newest
    items. A shared store raises ``StateStoreUnavailableError`` when it cannot
    be reached.
    """

    async def create(self, conversation: Conversation) -> None:
        """Store a new conversation with no items; ``InvalidInputError`` if its id exists."""
        ...

    async def get(self, conversation_id: str) -> Conversation:
        """Return the conversation."""
        ...

    async def append(
        self,
        conversation_id: str,
        items: Sequence[Mapping[str, Any]],
        *,
        fence: Lease | None = None,
    ) -> None:
        """Add items at the end of the conversation's history, all or none.

        Concurrent appends each land whole and in one place: no batch is split
        or interleaved with another. With ``fence``, the append is refused with
        ``LeaseLostError`` (nothing written) when this store's ``RunLock`` has
        granted a lease on the conversation that is not ``fence`` (a later
        run took over). A store fences against its own grants only: give the
        service and its model one state store. Items that are not JSON raise
        ``InvalidInputError``.
        """
        ...

    async def items(self, conversation_id: str) -> list[Mapping[str, Any]]:
        """The conversation's items, oldest first: copies the caller may change."""
        ...


class StateStoreHealth(Protocol):
    """Whether the shared state store answers, for the readiness check."""

    async def ping(self) -> None:
        """Return when the store answers; raise ``StateStoreUnavailableError`` when it does not."""
        ...
