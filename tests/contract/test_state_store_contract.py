"""The state stores' contract: conversation store, run lock and pending calls in one.

Every state-store adapter (memory, Redis, Firestore) must pass this suite; the
shared ones run against a real redis-server and the Firestore emulator (see
``conftest.py``). Where two instances of the service matter, the test opens a
second store on the same data. Lease times are short (0.3 s) and real: the
stores are shared with servers whose clocks a test cannot move.
"""

from __future__ import annotations

from datetime import datetime, timezone

import anyio
import pytest

from assistant_service.domain.errors import (
    ConflictError,
    InvalidInputError,
    LeaseLostError,
    NotFoundError,
)
from assistant_service.domain.models import Conversation

pytestmark = pytest.mark.anyio

TTL = 0.3  # seconds; long enough for a few round trips, short enough to wait out
# For a lease that must stay live through the test, however slow a loaded emulator is.
LIVE = 30.0


def conversation(identifier: str = "conv_1") -> Conversation:
    return Conversation(
        identifier,
        "assistant-1",
        datetime(2026, 11, 1, 12, 30, 1, 5, tzinfo=timezone.utc),
        {"k": "v"},
    )


async def wait_out(ttl: float = TTL) -> None:
    await anyio.sleep(ttl + 0.05)


@pytest.fixture
def store(state_backend):
    return state_backend.store


@pytest.fixture
def peer(state_backend):
    """Another instance of the service, on the same shared state."""
    return state_backend.instance()


# Conversations and items


async def test_a_created_conversation_reads_back_the_same_from_another_instance(store, peer):
    await store.create(conversation())
    assert await peer.get("conv_1") == conversation()
    assert await peer.items("conv_1") == []


async def test_a_conversation_is_created_once(store, peer):
    await store.create(conversation())
    with pytest.raises(InvalidInputError, match="exists"):
        await peer.create(conversation())


async def test_unknown_conversations_are_not_found(store):
    with pytest.raises(NotFoundError):
        await store.get("conv_missing")
    with pytest.raises(NotFoundError):
        await store.items("conv_missing")
    with pytest.raises(NotFoundError):
        await store.append("conv_missing", [{"role": "user"}])
    lease = await store.acquire("conv_missing", "run-1", TTL)
    with pytest.raises(NotFoundError):
        await store.append("conv_missing", [{"role": "user"}], fence=lease)


async def test_items_keep_their_order_and_content(store, peer):
    await store.create(conversation())
    await store.append("conv_1", [{"role": "user", "content": "héllo\n\u2603 \U0001f600"}])
    await peer.append("conv_1", [{"role": "assistant", "tool_calls": [{"id": "c1"}]}, {"n": 1.5}])
    await store.append("conv_1", [])
    await peer.append("conv_1", [{"nested": {"list": [[1, 2], [], None, True]}, "big": 2**62}])
    assert await store.items("conv_1") == [
        {"role": "user", "content": "héllo\n\u2603 \U0001f600"},
        {"role": "assistant", "tool_calls": [{"id": "c1"}]},
        {"n": 1.5},
        {"nested": {"list": [[1, 2], [], None, True]}, "big": 2**62},
    ]


async def test_items_are_copied_in_and_out(store):
    await store.create(conversation())
    item = {"list": [1]}
    await store.append("conv_1", [item])
    item["list"].append(2)
    items = await store.items("conv_1")
    items[0]["list"].append(3)  # type: ignore[index]
    assert await store.items("conv_1") == [{"list": [1]}]


async def test_a_batch_with_an_item_that_is_not_json_writes_nothing(store):
    await store.create(conversation())
    with pytest.raises(InvalidInputError, match="JSON"):
        await store.append("conv_1", [{"ok": 1}, {"bad": object()}])
    assert await store.items("conv_1") == []


async def append_concurrently(instances, writers: int, batch: int) -> None:
    async def write(writer: int) -> None:
        items = [{"writer": writer, "n": n} for n in range(batch)]
        await instances[writer % len(instances)].append("conv_1", items)

    async with anyio.create_task_group() as group:
        for writer in range(writers):
            group.start_soon(write, writer)


def assert_whole_batches(items, writers: int, batch: int) -> None:
    assert len(items) == writers * batch
    for start in range(0, len(items), batch):
        chunk = items[start : start + batch]
        assert [item["n"] for item in chunk] == list(range(batch)), chunk
        assert len({item["writer"] for item in chunk}) == 1, chunk
    assert {item["writer"] for item in items} == set(range(writers))


async def test_concurrent_appends_keep_every_item_and_each_batch_whole(store):
    await store.create(conversation())
    await append_concurrently([store], writers=32, batch=4)
    assert_whole_batches(await store.items("conv_1"), writers=32, batch=4)


async def test_concurrent_appends_from_two_instances_keep_every_item_and_each_batch_whole(
    store, peer
):
    # Two writers: on the Firestore emulator, contending transactions wait
    # seconds on each other's locks (one instance runs its own one at a time).
    await store.create(conversation())
    await append_concurrently([store, peer], writers=2, batch=3)
    assert_whole_batches(await peer.items("conv_1"), writers=2, batch=3)


async def test_a_long_history_reads_back_whole_and_in_order(store):
    # Longer than a Firestore page (300): the pages join in order.
    await store.create(conversation())
    for start in range(0, 700, 100):
        await store.append("conv_1", [{"n": n} for n in range(start, start + 100)])
    assert [item["n"] for item in await store.items("conv_1")] == list(range(700))


async def test_a_history_keeps_its_newest_items(state_backend):
    store = state_backend.fresh(max_items=3)
    await store.create(conversation())
    await store.append("conv_1", [{"n": 1}, {"n": 2}])
    await store.append("conv_1", [{"n": 3}, {"n": 4}, {"n": 5}])
    assert await store.items("conv_1") == [{"n": 3}, {"n": 4}, {"n": 5}]
    await store.append("conv_1", [{"n": 6}])
    assert await store.items("conv_1") == [{"n": 4}, {"n": 5}, {"n": 6}]


async def test_the_store_answers_a_ping(store):
    await store.ping()


# The run lock


async def test_a_live_lease_refuses_another_holder_on_any_instance(store, peer):
    lease = await store.acquire("conv_1", "run-1", LIVE)
    assert (lease.conversation_id, lease.holder, lease.ttl) == ("conv_1", "run-1", LIVE)
    with pytest.raises(ConflictError) as refused:
        await peer.acquire("conv_1", "run-2", TTL)
    assert not isinstance(refused.value, LeaseLostError)
    # Another conversation is free.
    await peer.acquire("conv_2", "run-2", TTL)


async def test_a_lapsed_lease_is_taken_over_with_a_higher_token(store, peer):
    first = await store.acquire("conv_1", "run-1", TTL)
    await wait_out()
    second = await peer.acquire("conv_1", "run-2", TTL)
    assert second.token > first.token
    assert second.holder == "run-2"


async def test_tokens_rise_across_release_expiry_and_the_same_holder(store, peer):
    tokens = [(await store.acquire("conv_1", "run-1", TTL)).token]
    await store.release(await store.acquire("conv_1", "run-1", TTL))
    tokens.append((await peer.acquire("conv_1", "run-2", TTL)).token)
    await wait_out()
    tokens.append((await store.acquire("conv_1", "run-3", TTL)).token)
    again = await store.acquire("conv_1", "run-3", TTL)
    tokens.append(again.token)
    assert tokens == sorted(set(tokens)), tokens


async def test_the_same_holder_asking_again_gets_a_new_lease_and_the_old_one_stops_counting(
    store,
):
    old = await store.acquire("conv_1", "run-1", LIVE)
    new = await store.acquire("conv_1", "run-1", LIVE)
    assert new.token > old.token
    with pytest.raises(LeaseLostError):
        await store.renew(old)
    await store.renew(new)


async def test_renewing_extends_the_lease(store, peer):
    # A longer lease than the other tests': each renewal must land before it
    # lapses, and an emulator under load can take a few hundred ms a round trip.
    ttl = 1.5
    lease = await store.acquire("conv_1", "run-1", ttl)
    for _ in range(3):
        await anyio.sleep(ttl / 3)
        await store.renew(lease)
    # Over 1.5 s after the grant, past the first ttl: still held.
    with pytest.raises(ConflictError):
        await peer.acquire("conv_1", "run-2", ttl)


async def test_renewing_after_a_takeover_raises(store, peer):
    lease = await store.acquire("conv_1", "run-1", TTL)
    await wait_out()
    await peer.acquire("conv_1", "run-2", TTL)
    with pytest.raises(LeaseLostError):
        await store.renew(lease)


async def test_renewing_a_lapsed_lease_raises_even_if_nobody_took_it(store):
    lease = await store.acquire("conv_1", "run-1", TTL)
    await wait_out()
    with pytest.raises(LeaseLostError):
        await store.renew(lease)


async def test_release_frees_the_conversation(store, peer):
    lease = await store.acquire("conv_1", "run-1", TTL)
    await store.release(lease)
    await peer.acquire("conv_1", "run-2", TTL)
    with pytest.raises(LeaseLostError):
        await store.renew(lease)
    await store.release(lease)  # again: nothing to do


async def test_a_stale_lease_releases_nothing(store, peer):
    stale = await store.acquire("conv_1", "run-1", TTL)
    await wait_out()
    current = await peer.acquire("conv_1", "run-2", LIVE)
    await store.release(stale)
    with pytest.raises(ConflictError):
        await store.acquire("conv_1", "run-3", TTL)
    await peer.renew(current)


async def test_a_lease_needs_a_positive_ttl(store):
    with pytest.raises(InvalidInputError):
        await store.acquire("conv_1", "run-1", 0)


# Fenced appends


async def test_a_fenced_append_by_the_holder_is_written(store, peer):
    await store.create(conversation())
    lease = await store.acquire("conv_1", "run-1", TTL)
    await peer.append("conv_1", [{"n": 1}], fence=lease)
    assert await store.items("conv_1") == [{"n": 1}]


async def test_a_fenced_append_after_a_takeover_is_refused_and_writes_nothing(store, peer):
    await store.create(conversation())
    old = await store.acquire("conv_1", "run-1", TTL)
    await store.append("conv_1", [{"by": "run-1"}], fence=old)
    await wait_out()
    new = await peer.acquire("conv_1", "run-2", TTL)
    with pytest.raises(LeaseLostError, match="nothing was written"):
        await store.append("conv_1", [{"by": "run-1, late"}, {"more": True}], fence=old)
    await peer.append("conv_1", [{"by": "run-2"}], fence=new)
    assert await store.items("conv_1") == [{"by": "run-1"}, {"by": "run-2"}]


async def test_a_fenced_append_after_a_release_and_a_new_grant_is_refused(store, peer):
    await store.create(conversation())
    old = await store.acquire("conv_1", "run-1", TTL)
    await store.release(old)
    await peer.acquire("conv_1", "run-2", TTL)
    with pytest.raises(LeaseLostError):
        await store.append("conv_1", [{"late": True}], fence=old)
    assert await store.items("conv_1") == []


async def test_a_lapsed_lease_nobody_took_still_fences(store):
    # The token is still the latest granted: no other run can have written.
    await store.create(conversation())
    lease = await store.acquire("conv_1", "run-1", TTL)
    await wait_out()
    await store.append("conv_1", [{"n": 1}], fence=lease)
    assert await store.items("conv_1") == [{"n": 1}]


async def test_a_store_fences_against_its_own_grants_only(store):
    # A lease from another lock (a model whose store is not the service's run
    # lock) writes while this store granted nothing on the conversation, and is
    # refused from the first grant on: fencing needs one store for both.
    await store.create(conversation())
    other_lock = await store.acquire("conv_other", "run-1", TTL)
    foreign = type(other_lock)("conv_1", "run-1", other_lock.token + 1_000, TTL)
    await store.append("conv_1", [{"n": 1}], fence=foreign)
    await store.acquire("conv_1", "run-2", TTL)
    with pytest.raises(LeaseLostError):
        await store.append("conv_1", [{"n": 2}], fence=foreign)
    assert await store.items("conv_1") == [{"n": 1}]


async def test_a_lease_on_another_conversation_cannot_fence(store):
    await store.create(conversation())
    lease = await store.acquire("conv_other", "run-1", TTL)
    with pytest.raises(InvalidInputError):
        await store.append("conv_1", [{"n": 1}], fence=lease)


# Pending calls


async def test_pending_calls_are_remembered_and_taken_once(store, peer):
    assert await store.take("conv_1") == ()
    await store.remember("conv_1", ["call_a", "call_b"])
    await store.remember("conv_2", ["call_z"])
    assert await peer.take("conv_1") == ("call_a", "call_b")
    assert await store.take("conv_1") == ()
    assert await store.take("conv_2") == ("call_z",)


async def test_remembering_replaces_and_nothing_forgets(store):
    await store.remember("conv_1", ["call_a"])
    await store.remember("conv_1", ["call_b", "call_c"])
    assert await store.take("conv_1") == ("call_b", "call_c")
    await store.remember("conv_1", ["call_d"])
    await store.remember("conv_1", [])
    assert await store.take("conv_1") == ()


async def test_concurrent_takes_hand_the_calls_to_one_taker(store, peer):
    await store.remember("conv_1", ["call_a", "call_b"])
    taken: list[tuple[str, ...]] = []

    async def take(instance) -> None:
        taken.append(await instance.take("conv_1"))

    async with anyio.create_task_group() as group:
        for n in range(4):
            group.start_soon(take, store if n % 2 else peer)
    assert sorted(taken) == [()] * 3 + [("call_a", "call_b")]


# One-time tokens

DIGEST = "a" * 64  # keys are digests of the tokens, as the edge gives them


async def test_a_token_is_taken_once_from_any_instance(store, peer):
    assert await store.take_token(DIGEST) is None
    await store.put_token(DIGEST, "alice", LIVE)
    await store.put_token("b" * 64, "bob", LIVE)
    assert await peer.take_token(DIGEST) == "alice"
    assert await store.take_token(DIGEST) is None
    assert await peer.take_token(DIGEST) is None
    assert await store.take_token("b" * 64) == "bob"


async def test_putting_a_token_again_replaces_its_value(store, peer):
    await store.put_token(DIGEST, "alice", LIVE)
    await peer.put_token(DIGEST, "bob", LIVE)
    assert await store.take_token(DIGEST) == "bob"


async def test_a_token_past_its_ttl_is_gone(store, peer):
    await store.put_token(DIGEST, "alice", TTL)
    await store.put_token("b" * 64, "bob", LIVE)
    await wait_out()
    assert await peer.take_token(DIGEST) is None
    assert await peer.take_token("b" * 64) == "bob"


@pytest.mark.parametrize("ttl", [0, -1.0])
async def test_a_token_needs_a_positive_ttl(store, ttl):
    with pytest.raises(InvalidInputError):
        await store.put_token(DIGEST, "alice", ttl)
    assert await store.take_token(DIGEST) is None


async def test_concurrent_takes_hand_a_token_to_one_taker(store, peer):
    await store.put_token(DIGEST, "alice", LIVE)
    taken: list[str | None] = []

    async def take(instance) -> None:
        taken.append(await instance.take_token(DIGEST))

    async with anyio.create_task_group() as group:
        for n in range(6):
            group.start_soon(take, store if n % 2 else peer)
    assert taken.count("alice") == 1
    assert taken.count(None) == 5
