"""Conversations and their history in memory."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from assistant_service.domain.errors import InvalidInputError, LeaseLostError, NotFoundError
from assistant_service.domain.leases import Lease
from assistant_service.domain.models import Conversation


@attrs.define
class InMemoryConversationStore:
    """A process-local store, bounded in conversations and items per conversation.

    The oldest conversation is dropped when ``max_conversations`` is reached, so
    a long-running process does not grow without bound. Items are copied in and
    out: callers cannot change stored history by accident.

    It has no run lock, so no lease can fence its appends: a fenced append is
    refused. :class:`~assistant_service.adapters.state.memory.InMemoryStateStore`
    has one, and supersedes this store.
    """

    max_conversations: int = 10_000
    max_items_per_conversation: int = 10_000
    _conversations: dict[str, Conversation] = attrs.field(factory=dict, init=False)
    _items: dict[str, list[Mapping[str, Any]]] = attrs.field(factory=dict, init=False)

    async def create(self, conversation: Conversation) -> None:
        if conversation.id in self._conversations:
            raise InvalidInputError(f"conversation {conversation.id!r} exists already")
        while len(self._conversations) >= self.max_conversations:
            oldest = next(iter(self._conversations))
            del self._conversations[oldest]
            del self._items[oldest]
        self._conversations[conversation.id] = conversation
        self._items[conversation.id] = []

    async def get(self, conversation_id: str) -> Conversation:
        try:
            return self._conversations[conversation_id]
        except KeyError:
            raise NotFoundError("conversation", conversation_id) from None

    async def append(
        self,
        conversation_id: str,
        items: Sequence[Mapping[str, Any]],
        *,
        fence: Lease | None = None,
    ) -> None:
        history = self._history(conversation_id)
        if fence is not None:
            # No lock of this store granted the lease: it cannot be current here.
            raise LeaseLostError(f"this store cannot fence appends to {conversation_id!r}")
        copies = [_json_copy(item) for item in items]  # all or none: copy before changing
        history.extend(copies)
        # Keep the newest items: an over-long history loses its oldest turns first.
        del history[: max(0, len(history) - self.max_items_per_conversation)]

    async def items(self, conversation_id: str) -> list[Mapping[str, Any]]:
        # Items are JSON (checked on append): a JSON round trip copies them faster than deepcopy.
        copied: list[Mapping[str, Any]] = json.loads(json.dumps(self._history(conversation_id)))
        return copied

    def _history(self, conversation_id: str) -> list[Mapping[str, Any]]:
        try:
            return self._items[conversation_id]
        except KeyError:
            raise NotFoundError("conversation", conversation_id) from None


def _json_copy(item: Mapping[str, Any]) -> Mapping[str, Any]:
    # A JSON round trip copies deeply and refuses what a shared store could not hold.
    try:
        copied: Mapping[str, Any] = json.loads(json.dumps(item))
    except (TypeError, ValueError) as error:
        raise InvalidInputError(f"conversation items must be JSON: {error}") from None
    return copied
