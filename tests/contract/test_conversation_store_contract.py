"""The conversation-store port's contract.

Every ConversationStore adapter must pass this suite: the in-memory store, and
the shared ones against a real redis-server and the Firestore emulator
(their backends come from ``support.state_backends``). What the state stores add (leases,
fenced appends, pending calls) is in ``test_state_store_contract.py``.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from assistant_service.domain.errors import NotFoundError
from assistant_service.domain.models import Conversation
from support.state_backends import STATE_BACKENDS, StateBackend, state_backend_opener

pytestmark = pytest.mark.anyio


@pytest.fixture(params=STATE_BACKENDS)
async def store(request):
    backend = StateBackend(request.param, state_backend_opener(request.param, request))
    try:
        yield backend.store
    finally:
        await backend.aclose()


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
