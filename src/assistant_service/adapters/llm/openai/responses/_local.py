"""Responses state kept by this service, in a ConversationStore (``RESPONSES_STATE=local``).

For zero-data-retention organisations and Responses-compatible servers with no
``/v1/conversations``: every request has ``store=False`` and carries the whole
conversation (its input and output items, kept in the store) plus the step's
new items. Conversations themselves (id ``conv_local_<hex>``, assistant,
metadata) live in the store too. Calls left unanswered in the stored items are
answered as interrupted before the next step.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from assistant_service.adapters.llm.openai.responses._state import (
    PreparedStep,
    message_from_item,
    step_items,
    unanswered_calls,
)
from assistant_service.domain.leases import Lease
from assistant_service.domain.models import AssistantProfile, Conversation, Message
from assistant_service.domain.steps import StepInput
from assistant_service.ports.conversations import ConversationStore


@attrs.define
class LocalConversations:
    """Conversations and their items in ``store``."""

    _store: ConversationStore = attrs.field(alias="store")

    async def open(
        self, profile: AssistantProfile, metadata: Mapping[str, str] | None
    ) -> Conversation:
        conversation = Conversation.new(profile.id, metadata, prefix="conv_local")
        await self._store.create(conversation)
        return conversation

    async def get(self, conversation_id: str) -> Conversation:
        return await self._store.get(conversation_id)

    async def prepare(self, conversation: Conversation, step: StepInput) -> PreparedStep:
        stored = _paired(await self._store.items(conversation.id))
        items, repaired = step_items(step, unanswered_calls(stored))
        return PreparedStep((*stored, *items), tuple(items), {"store": False}, repaired)

    async def after_rejection(
        self,
        conversation: Conversation,  # noqa: ARG002 -- the store already told us everything
        prepared: PreparedStep,  # noqa: ARG002
    ) -> PreparedStep | None:
        return None

    async def commit(
        self,
        conversation: Conversation,
        prepared: PreparedStep,
        output_items: Sequence[Mapping[str, Any]],
        call_ids: Sequence[str],  # noqa: ARG002 -- they are in output_items
        *,
        fence: Lease | None,
    ) -> None:
        # Only a completed step is stored, in one append: all of it or none.
        await self._store.append(conversation.id, [*prepared.new_items, *output_items], fence=fence)

    async def history(self, conversation_id: str) -> list[Message]:
        items = await self._store.items(conversation_id)
        return [m for m in map(message_from_item, items) if m is not None]


def _paired(items: list[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    # A bounded store drops its oldest items; an output whose call was dropped
    # would make every later request fail, so it goes too.
    calls = {i.get("call_id") for i in items if i.get("type") == "function_call"}
    return [
        item
        for item in items
        if item.get("type") != "function_call_output" or item.get("call_id") in calls
    ]
