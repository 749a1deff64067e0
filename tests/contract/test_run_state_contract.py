"""The run-state stores' contract: each run's event log and its record, and cancel requests.

Every state-store adapter (memory, Redis, Firestore) must pass this suite; the
shared ones run against a real redis-server and the Firestore emulator (see
``conftest.py``). What another instance of the service sees, the test reads
through a second store on the same data. Times are short and real (the servers'
clocks cannot be moved): a ttl of 0.3 s, waits of 0.2 s.
"""

from __future__ import annotations

import time

import anyio
import pytest

from assistant_service.domain.errors import InvalidInputError, NotFoundError
from assistant_service.domain.models import Message, Role, RunResult, RunStatus, Usage
from assistant_service.domain.runs import RunRecord
from assistant_service.domain.tools import OutcomeStatus, ToolCall, ToolOutcome

pytestmark = pytest.mark.anyio

TTL = 0.3  # seconds; long enough for a few round trips, short enough to wait out
WAIT = 0.2  # how long a read waits for events that do not come
LONG = 60.0  # a ttl no test waits out


def event(seq: int, **fields: object) -> dict[str, object]:
    return {"seq": seq, "type": "text.delta", **fields}


def events(first: int, last: int) -> list[dict[str, object]]:
    return [event(seq) for seq in range(first, last + 1)]


def seqs(found) -> list[int]:
    return [e["seq"] for e in found]


async def wait_out(ttl: float = TTL) -> None:
    await anyio.sleep(ttl + 0.1)


def record(run_id: str = "run_1", conversation_id: str = "conv_1", **changes: object) -> RunRecord:
    return RunRecord(run_id, conversation_id, **changes)  # type: ignore[arg-type]


def ended_record() -> RunRecord:
    """A record with every kind of value a run's result holds."""
    pending = ToolCall("call_2", "wire_money", '{"amount": 12.5, "to": "Zoë"}')
    outcome = ToolOutcome(ToolCall("call_1", "lookup", "{}"), OutcomeStatus.TIMEOUT, "late", 1.25)
    result = RunResult(
        "run_1",
        "conv_1",
        RunStatus.REQUIRES_APPROVAL,
        messages=(Message(Role.ASSISTANT, "héllo \u2603\n"), Message(Role.ASSISTANT, "")),
        tool_outcomes=(outcome,),
        usage=Usage(120, 34),
        tool_rounds=2,
        pending=(pending,),
    )
    return RunRecord(
        "run_1",
        "conv_1",
        RunStatus.REQUIRES_APPROVAL,
        result,
        error_code="upstream",
        error_message="it failed once",
        resumes="run_0",
        resumed_by=None,
    )


@pytest.fixture
def store(state_backend):
    return state_backend.store


@pytest.fixture
def peer(state_backend):
    """Another instance of the service, on the same shared state."""
    return state_backend.instance()


# The event log


async def test_events_read_back_in_order_from_another_instance(store, peer):
    await store.append_events("run_1", [event(1, text="héllo \u2603"), event(2)])
    await store.append_events("run_1", [])
    await store.append_events("run_1", [event(3, nested={"list": [1, None, True]})])
    assert await peer.read_events("run_1") == [
        event(1, text="héllo \u2603"),
        event(2),
        event(3, nested={"list": [1, None, True]}),
    ]


async def test_a_read_starts_after_the_given_seq(store):
    await store.append_events("run_1", events(1, 5))
    assert seqs(await store.read_events("run_1", after=2)) == [3, 4, 5]
    assert await store.read_events("run_1", after=5) == []
    assert await store.read_events("run_1", after=9) == []


async def test_a_read_returns_at_most_limit_events(store):
    await store.append_events("run_1", events(1, 5))
    assert seqs(await store.read_events("run_1", limit=2)) == [1, 2]
    assert seqs(await store.read_events("run_1", after=3, limit=10)) == [4, 5]
    assert seqs(await store.read_events("run_1", after=1, limit=1, wait=WAIT)) == [2]


async def test_runs_have_logs_of_their_own(store):
    await store.append_events("run_1", events(1, 2))
    await store.append_events("run_2", [event(1, run="two")])
    assert await store.read_events("run_2") == [event(1, run="two")]
    assert seqs(await store.read_events("run_1")) == [1, 2]


async def test_an_unknown_run_has_no_events(store):
    assert await store.read_events("run_missing") == []


async def test_a_waiting_read_returns_when_another_instance_appends(store, peer):
    await store.append_events("run_1", events(1, 2))
    found: list = []

    async def read() -> None:
        found.extend(await store.read_events("run_1", after=2, wait=10.0))

    started = time.monotonic()
    async with anyio.create_task_group() as group:
        group.start_soon(read)
        await anyio.sleep(0.1)
        await peer.append_events("run_1", events(3, 4))
    assert seqs(found) in ([3], [3, 4])  # the first batch of what came, at least
    assert time.monotonic() - started < 5.0  # woken by the append, not by the wait's end


async def test_a_waiting_read_sees_the_first_events_of_a_run(store, peer):
    found: list = []

    async def read() -> None:
        found.extend(await store.read_events("run_1", wait=10.0))

    started = time.monotonic()
    async with anyio.create_task_group() as group:
        group.start_soon(read)
        await anyio.sleep(0.1)
        await peer.append_events("run_1", [event(1)])
    assert found == [event(1)]
    assert time.monotonic() - started < 5.0


async def test_a_waiting_read_returns_nothing_when_nothing_comes(store):
    await store.append_events("run_1", events(1, 2))
    started = time.monotonic()
    assert await store.read_events("run_1", after=2, wait=WAIT) == []
    assert await store.read_events("run_missing", wait=WAIT) == []
    elapsed = time.monotonic() - started
    assert 2 * WAIT - 0.05 <= elapsed < 2 * WAIT + 2.0


async def test_a_waiting_read_returns_what_is_there_at_once(store):
    await store.append_events("run_1", events(1, 3))
    started = time.monotonic()
    assert seqs(await store.read_events("run_1", after=1, wait=10.0)) == [2, 3]
    assert time.monotonic() - started < 5.0


async def test_expired_events_are_gone(store, peer):
    await store.append_events("run_1", events(1, 3))
    await store.append_events("run_2", events(1, 1))
    await store.expire_events("run_1", TTL)
    assert seqs(await peer.read_events("run_1")) == [1, 2, 3]  # kept until the ttl ends
    await wait_out()
    assert await peer.read_events("run_1") == []
    assert await peer.read_events("run_1", wait=WAIT) == []
    assert seqs(await peer.read_events("run_2")) == [1]


async def test_expiring_an_unknown_run_does_nothing(store):
    await store.expire_events("run_missing", TTL)
    assert await store.read_events("run_missing") == []


async def test_a_batch_with_an_event_that_is_not_json_writes_nothing(store):
    await store.append_events("run_1", [event(1)])
    with pytest.raises(InvalidInputError, match="JSON"):
        await store.append_events("run_1", [event(2), event(3, bad=object())])
    assert await store.read_events("run_1") == [event(1)]


@pytest.mark.parametrize(
    "batch",
    [
        [{"type": "no seq"}],
        [event(1), {"seq": "2"}],
        [{"seq": True}],
        [{"seq": 0}],
        [event(2), event(1)],
    ],
)
async def test_a_batch_without_rising_integer_seqs_writes_nothing(store, batch):
    with pytest.raises(InvalidInputError, match="seq"):
        await store.append_events("run_1", batch)
    assert await store.read_events("run_1") == []


async def test_events_are_copied_in_and_out(store):
    first = event(1, list=[1])
    await store.append_events("run_1", [first])
    first["list"].append(2)  # type: ignore[attr-defined]
    found = await store.read_events("run_1")
    found[0]["list"].append(3)  # type: ignore[index]
    assert await store.read_events("run_1") == [event(1, list=[1])]


# The run registry


async def test_a_saved_run_loads_the_same_from_another_instance(store, peer):
    await store.save_run(ended_record(), LONG)
    assert await peer.load_run("run_1") == ended_record()
    assert await peer.latest_run("conv_1") == ended_record()


async def test_a_record_without_a_result_round_trips(store, peer):
    await store.save_run(record(), LONG)
    assert await peer.load_run("run_1") == record()


async def test_a_saved_run_replaces_its_last_record(store, peer):
    await store.save_run(record(), LONG)
    await store.save_run(ended_record(), LONG)
    assert await peer.load_run("run_1") == ended_record()


async def test_the_latest_run_is_the_last_one_saved_on_the_conversation(store, peer):
    assert await peer.latest_run("conv_1") is None
    await store.save_run(record("run_1"), LONG)
    await store.save_run(record("run_2"), LONG)
    await store.save_run(record("run_3", "conv_2"), LONG)
    assert await peer.latest_run("conv_1") == record("run_2")
    assert await peer.latest_run("conv_2") == record("run_3", "conv_2")
    await store.save_run(record("run_1", status=RunStatus.CANCELLED), LONG)
    assert await peer.latest_run("conv_1") == record("run_1", status=RunStatus.CANCELLED)
    assert await peer.load_run("run_2") == record("run_2")


async def test_an_unknown_run_is_not_found(store):
    with pytest.raises(NotFoundError, match="run_missing"):
        await store.load_run("run_missing")
    assert await store.latest_run("conv_missing") is None


async def test_a_record_expires_after_its_ttl(store, peer):
    await store.save_run(record("run_1"), TTL)
    await store.save_run(record("run_2", "conv_2"), LONG)
    assert await peer.load_run("run_1") == record("run_1")
    await wait_out()
    with pytest.raises(NotFoundError):
        await peer.load_run("run_1")
    assert await peer.latest_run("conv_1") is None
    assert await peer.latest_run("conv_2") == record("run_2", "conv_2")


async def test_a_record_saved_again_lives_on(store, peer):
    await store.save_run(record(), TTL)
    await store.save_run(record(status=RunStatus.COMPLETED), LONG)
    await wait_out()
    assert await peer.load_run("run_1") == record(status=RunStatus.COMPLETED)


@pytest.mark.parametrize("ttl", [0, -1.0])
async def test_a_record_needs_a_positive_ttl(store, ttl):
    with pytest.raises(InvalidInputError, match="ttl"):
        await store.save_run(record(), ttl)
    with pytest.raises(InvalidInputError, match="ttl"):
        await store.request_cancel("run_1", ttl)


# Cancel requests


async def test_a_cancel_request_is_seen_by_another_instance(store, peer):
    assert not await peer.cancel_requested("run_1")
    await store.request_cancel("run_1", LONG)
    assert await peer.cancel_requested("run_1")
    assert not await peer.cancel_requested("run_2")


async def test_a_cancel_request_expires_after_its_ttl(store, peer):
    await store.request_cancel("run_1", TTL)
    assert await peer.cancel_requested("run_1")
    await wait_out()
    assert not await peer.cancel_requested("run_1")
