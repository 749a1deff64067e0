"""The conversation-store port."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from assistant_service.domain.models import Conversation


class ConversationStore(Protocol):
    """Conversations and their history, for backends that keep none themselves.

    Items are JSON-compatible mappings in the backend's own format (chat
    messages, response input items); the store keeps them in order and never
    interprets them. ``get`` and ``items`` raise ``NotFoundError`` for an unknown id.
    """

    async def create(self, conversation: Conversation) -> None:
        """Store a new conversation with no items."""
        ...

    async def get(self, conversation_id: str) -> Conversation:
        """Return the conversation."""
        ...

    async def append(self, conversation_id: str, items: Sequence[Mapping[str, Any]]) -> None:
        """Add items at the end of the conversation's history, all or none."""
        ...

    async def items(self, conversation_id: str) -> list[Mapping[str, Any]]:
        """The conversation's items, oldest first."""
        ...
