"""Responses state kept by the server, in the Conversations API (``RESPONSES_STATE=conversations``).

``conversations.create`` opens a conversation with the assistant id in its
metadata; ``conversations.retrieve`` finds it again (cached per process: a
conversation's assistant never changes). Each step sends only its new items
with ``conversation=<id>``; the server appends them and the response's output.

Interrupted tool calls are found two ways. A ``PendingCalls`` store (shared
by every instance on Redis or Firestore) remembers the calls the last step on
each conversation asked for; the next step answers any that got no output. A
conversation left broken otherwise (a store that forgot, a step that failed
midway) is refused by the server with a 400; the adapter then lists the
conversation's newest items, answers the calls that have no output as
interrupted and retries once. So the common path costs no extra request.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

import attrs
import openai

from assistant_service.adapters.llm.openai._client import (
    log_upstream_call,
    upstream_headers,
)
from assistant_service.adapters.llm.openai._errors import translate_openai_errors
from assistant_service.adapters.llm.openai._metadata import (
    ASSISTANT_KEY,
    metadata_strings,
    tagged_metadata,
)
from assistant_service.adapters.llm.openai._replies import (
    field,
    plain,
    reading,
    text_field,
    time_field,
)
from assistant_service.adapters.llm.openai.responses._state import (
    BoundedMap,
    PreparedStep,
    interrupted_outputs,
    message_from_item,
    step_items,
    unanswered_calls,
)
from assistant_service.adapters.observability import upstream
from assistant_service.domain.errors import NotFoundError
from assistant_service.domain.leases import Lease
from assistant_service.domain.models import AssistantProfile, Conversation, Message
from assistant_service.domain.steps import StepInput
from assistant_service.ports.run_state import PendingCalls

BACKEND = "responses"

MAX_HISTORY_ITEMS = 10_000
# How far back to look for unanswered calls: the last turn's items, at most.
MAX_REPAIR_SCAN = 500


@attrs.define
class ServerConversations:
    """Conversations in the upstream's Conversations API."""

    _client: openai.AsyncOpenAI = attrs.field(alias="client")
    _known: BoundedMap[str, Conversation] = attrs.field(factory=BoundedMap, init=False)
    _pending: PendingCalls = attrs.field(alias="pending")

    async def open(
        self, profile: AssistantProfile, metadata: Mapping[str, str] | None
    ) -> Conversation:
        tags = tagged_metadata(profile.id, metadata)
        log_upstream_call("conversations.create", assistant_id=profile.id)
        with upstream.reported(BACKEND, "conversations.create"), translate_openai_errors():
            created = await self._client.conversations.create(
                metadata=tags, extra_headers=upstream_headers()
            )
        conversation = _conversation(_id(created), time_field(created, "created_at"), tags)
        self._known.set(conversation.id, conversation)
        return conversation

    async def get(self, conversation_id: str) -> Conversation:
        known = self._known.get(conversation_id)
        if known is not None:
            return known
        log_upstream_call("conversations.retrieve", conversation_id=conversation_id)
        with (
            upstream.reported(BACKEND, "conversations.retrieve"),
            translate_openai_errors(not_found=("conversation", conversation_id)),
        ):
            found = await self._client.conversations.retrieve(
                conversation_id, extra_headers=upstream_headers()
            )
        _id(found)  # a reply without one is no conversation: not "unknown" either
        tags = metadata_strings(field(found, "metadata"))
        if ASSISTANT_KEY not in tags:
            # Not opened by this service: no assistant to run it with.
            raise NotFoundError("conversation", conversation_id)
        conversation = _conversation(conversation_id, time_field(found, "created_at"), tags)
        self._known.set(conversation.id, conversation)
        return conversation

    async def prepare(self, conversation: Conversation, step: StepInput) -> PreparedStep:
        # Popped, not read: if this step fails, what the server kept is unknown,
        # and the 400 path below finds out.
        pending = await self._pending.take(conversation.id)
        items, repaired = step_items(step, pending)
        return PreparedStep(tuple(items), tuple(items), {"conversation": conversation.id}, repaired)

    async def after_rejection(
        self, conversation: Conversation, prepared: PreparedStep
    ) -> PreparedStep | None:
        answered = {i.get("call_id") for i in prepared.new_items}
        missing = [c for c in await self._unanswered(conversation.id) if c not in answered]
        if not missing:
            return None
        items = (*interrupted_outputs(missing), *prepared.new_items)
        return PreparedStep(items, items, prepared.params, (*missing, *prepared.repaired))

    async def commit(
        self,
        conversation: Conversation,
        prepared: PreparedStep,  # noqa: ARG002 -- the server stored it already
        output_items: Sequence[Mapping[str, Any]],  # noqa: ARG002 -- same
        call_ids: Sequence[str],
        *,
        fence: Lease | None,  # noqa: ARG002 -- the server keeps the items; nothing to fence
    ) -> None:
        if call_ids:  # prepare() took what was remembered: nothing to clear otherwise
            await self._pending.remember(conversation.id, call_ids)

    async def history(self, conversation_id: str) -> list[Message]:
        items = await self._items(conversation_id, order="asc", limit=MAX_HISTORY_ITEMS)
        return [m for m in map(message_from_item, items) if m is not None]

    async def _unanswered(self, conversation_id: str) -> list[str]:
        # Newest first, back to the last user message: earlier calls were answered then.
        newest_first = await self._items(
            conversation_id, order="desc", limit=MAX_REPAIR_SCAN, until_user_message=True
        )
        return unanswered_calls(reversed(newest_first))

    async def _items(
        self,
        conversation_id: str,
        *,
        order: Literal["asc", "desc"],
        limit: int,
        until_user_message: bool = False,
    ) -> list[dict[str, Any]]:
        log_upstream_call("conversations.items.list", conversation_id=conversation_id)
        items: list[dict[str, Any]] = []
        with (
            upstream.reported(BACKEND, "conversations.items.list"),
            translate_openai_errors(not_found=("conversation", conversation_id)),
            # The SDK's paging reads the body's fields: a body that is no page fails in it.
            reading(BACKEND, "conversation items page"),
        ):
            pages = self._client.conversations.items.list(
                conversation_id, order=order, limit=100, extra_headers=upstream_headers()
            )
            async for item in pages:
                items.append(plain(item, backend=BACKEND, what="conversation item"))
                if len(items) >= limit or (until_user_message and _is_user_message(items[-1])):
                    break
        return items


def _is_user_message(item: Mapping[str, Any]) -> bool:
    return item.get("type") == "message" and item.get("role") == "user"


def _id(reply: Any) -> str:
    return text_field(reply, "id", backend=BACKEND, what="conversation")


def _conversation(
    conversation_id: str, created_at: datetime, tags: Mapping[str, str]
) -> Conversation:
    return Conversation(
        id=conversation_id,
        assistant_id=tags[ASSISTANT_KEY],
        created_at=created_at,
        metadata={k: v for k, v in tags.items() if k != ASSISTANT_KEY},
    )
