"""The in-memory state store's bounds: conversations, bytes, items, lease grants, pending calls, tokens.

The contract suite checks what every state store does; these check what only
a process-local one must: that it never grows without bound.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from assistant_service.adapters.state.memory import InMemoryStateStore
from assistant_service.domain.errors import ConflictError, InvalidInputError, NotFoundError
from assistant_service.domain.models import Conversation

pytestmark = pytest.mark.anyio

NOW = datetime(2026, 11, 1, tzinfo=timezone.utc)


class Clock:
    """Monotonic seconds that the test moves."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def item(size: int) -> dict[str, str]:
    """An item whose JSON is exactly ``size`` bytes."""
    overhead = len(json.dumps({"t": ""}, separators=(",", ":")))
    return {"t": "x" * (size - overhead)}


async def make(store: InMemoryStateStore, *names: str) -> None:
    for name in names:
        await store.create(Conversation(name, "assistant", NOW))


async def test_the_bytes_bound_evicts_the_least_recently_used_conversation():
    store = InMemoryStateStore(max_bytes=1_000)
    await make(store, "a", "b", "c")
    await store.append("a", [item(300)])
    await store.append("b", [item(300)])
    await store.append("c", [item(300)])
    assert store.stored_bytes == 900
    await store.items("a")  # a read is a use: "b" is now the least recently used
    await store.append("c", [item(200)])
    with pytest.raises(NotFoundError):
        await store.get("b")
    assert len(await store.items("a")) == 1
    assert len(await store.items("c")) == 2
    assert store.stored_bytes == 800


async def test_a_get_is_a_use_too():
    store = InMemoryStateStore(max_bytes=500)
    await make(store, "a", "b")
    await store.append("a", [item(200)])
    await store.append("b", [item(200)])
    await store.get("a")
    await store.append("b", [item(200)])
    with pytest.raises(NotFoundError):
        await store.get("a")  # "b" was written after "a" was read: "a" went


async def test_a_conversation_alone_over_the_bound_loses_its_oldest_items():
    store = InMemoryStateStore(max_bytes=1_000)
    await make(store, "a")
    for n in range(5):
        await store.append("a", [{**item(300), "n": n}])
    assert [i["n"] for i in await store.items("a")] == [2, 3, 4]
    assert store.stored_bytes <= 1_000


async def test_a_batch_larger_than_the_bound_is_refused_whole():
    store = InMemoryStateStore(max_bytes=1_000)
    await make(store, "a", "b")
    await store.append("b", [item(100)])
    with pytest.raises(InvalidInputError, match="exceed"):
        await store.append("a", [item(600), item(600)])
    assert await store.items("a") == []
    assert len(await store.items("b")) == 1
    assert store.stored_bytes == 100


async def test_the_conversation_count_is_bounded_least_recently_used_first():
    store = InMemoryStateStore(max_conversations=2)
    await make(store, "a", "b")
    await store.append("a", [{"n": 1}])
    await make(store, "c")
    with pytest.raises(NotFoundError):
        await store.get("b")
    assert await store.items("a") == [{"n": 1}]
    await store.get("c")


async def test_an_evicted_conversations_bytes_are_given_back():
    store = InMemoryStateStore(max_conversations=1)
    await make(store, "a")
    await store.append("a", [item(500)])
    await make(store, "b")
    assert store.stored_bytes == 0


async def test_a_history_keeps_its_newest_items_and_their_bytes_only():
    store = InMemoryStateStore(max_items=2)
    await make(store, "a")
    await store.append("a", [item(100), item(200), item(300)])
    assert store.stored_bytes == 500


async def test_non_ascii_items_are_counted_in_bytes_and_come_back_whole():
    store = InMemoryStateStore()
    await make(store, "a")
    await store.append("a", [{"t": "é☃😀"}])
    assert await store.items("a") == [{"t": "é☃😀"}]
    # Stored as UTF-8 JSON: 2, 3 and 4 bytes for the three characters, 8 for the rest.
    assert store.stored_bytes == len('{"t":""}') + 2 + 3 + 4


async def test_idle_lease_grants_are_dropped_beyond_the_bound_but_live_ones_never():
    clock = Clock()
    store = InMemoryStateStore(max_conversations=2, clock=clock)
    live = await store.acquire("a", "run-a", 100)
    await store.release(await store.acquire("b", "run-b", 100))
    await store.acquire("c", "run-c", 100)  # over the bound: the released grant "b" goes
    assert set(store._grants) == {"a", "c"}
    await store.acquire("d", "run-d", 100)  # every grant is live: none is dropped
    assert set(store._grants) == {"a", "c", "d"}
    with pytest.raises(ConflictError):
        await store.acquire("a", "run-x", 100)
    clock.now += 101  # all lapse
    await store.acquire("e", "run-e", 100)
    assert len(store._grants) <= 3
    await store.renew(await store.acquire("a", "run-x", 100))
    assert live.token < store._grants["a"].token


async def test_an_injected_clock_times_the_leases():
    clock = Clock()
    store = InMemoryStateStore(clock=clock)
    first = await store.acquire("a", "run-1", 10)
    clock.now += 9
    await store.renew(first)
    clock.now += 9  # 18 s after the grant, 9 after the renewal: still held
    with pytest.raises(ConflictError):
        await store.acquire("a", "run-2", 10)
    clock.now += 1
    second = await store.acquire("a", "run-2", 10)
    assert second.token > first.token


async def test_pending_calls_are_bounded_too():
    store = InMemoryStateStore(max_conversations=2)
    for name in ("a", "b", "c"):
        await store.remember(name, [f"call_{name}"])
    assert await store.take("a") == ()
    assert await store.take("c") == ("call_c",)


async def test_one_time_tokens_are_bounded_expired_ones_going_first():
    clock = Clock()
    store = InMemoryStateStore(max_tokens=3, clock=clock)
    await store.put_token("old", "a", 1.0)
    await store.put_token("kept-1", "b", 60.0)
    await store.put_token("kept-2", "c", 60.0)
    clock.now += 2.0  # "old" expired: it makes room, not the oldest live token
    await store.put_token("new", "d", 60.0)
    assert [await store.take_token(k) for k in ("kept-1", "kept-2", "new")] == ["b", "c", "d"]
    for n in range(5):  # all live: the oldest go
        await store.put_token(f"t{n}", str(n), 60.0)
    assert [await store.take_token(f"t{n}") for n in range(5)] == [None, None, "2", "3", "4"]


async def test_an_injected_clock_times_the_tokens():
    clock = Clock()
    store = InMemoryStateStore(clock=clock)
    await store.put_token("k", "v", 30.0)
    clock.now += 30.0
    assert await store.take_token("k") is None
