"""The conversation-store port's contract.

Every ConversationStore adapter must pass this suite: add a factory to
``STORES`` (a shared store would start its server in a fixture and return an
adapter pointed at it).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone

import pytest

from assistant_service.adapters.conversations.memory import InMemoryConversationStore
from assistant_service.domain.errors import NotFoundError
from assistant_service.domain.models import Conversation
from assistant_service.ports.conversations import ConversationStore

pytestmark = pytest.mark.anyio

STORES: dict[str, Callable[[], ConversationStore]] = {
    "memory": InMemoryConversationStore,
}


@pytest.fixture(params=sorted(STORES))
def store(request) -> ConversationStore:
    return STORES[request.param]()


def conversation(identifier: str = "conv_1") -> Conversation:
    return Conversation(
        identifier, "assistant-1", datetime(2026, 11, 1, tzinfo=timezone.utc), {"k": "v"}
    )


async def test_a_created_conversation_can_be_read_back(store):
    await store.create(conversation())
    assert await store.get("conv_1") == conversation()
    assert await store.items("conv_1") == []


async def test_unknown_conversations_are_not_found(store):
    with pytest.raises(NotFoundError):
        await store.get("conv_missing")
    with pytest.raises(NotFoundError):
        await store.items("conv_missing")
    with pytest.raises(NotFoundError):
        await store.append("conv_missing", [{"role": "user"}])


async def test_items_keep_their_order_and_content(store):
    await store.create(conversation())
    await store.append("conv_1", [{"role": "user", "content": "héllo\n"}])
    await store.append("conv_1", [{"role": "assistant", "tool_calls": [{"id": "c1"}]}, {"n": 1.5}])
    assert await store.items("conv_1") == [
        {"role": "user", "content": "héllo\n"},
        {"role": "assistant", "tool_calls": [{"id": "c1"}]},
        {"n": 1.5},
    ]


async def test_conversations_do_not_share_items(store):
    await store.create(conversation("conv_a"))
    await store.create(conversation("conv_b"))
    await store.append("conv_a", [{"x": 1}])
    assert await store.items("conv_b") == []


async def test_returned_items_are_copies(store):
    await store.create(conversation())
    await store.append("conv_1", [{"list": [1]}])
    items = await store.items("conv_1")
    items[0]["list"].append(2)  # type: ignore[index]
    assert await store.items("conv_1") == [{"list": [1]}]
