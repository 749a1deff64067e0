"""One run per conversation across instances: the facade's lease, on every state store.

Two ``AssistantService`` objects on one store play two instances of the
service: on Redis and Firestore each has a store object of its own on the
same data, as two processes do.
"""

from __future__ import annotations

from contextlib import aclosing

import anyio
import pytest

from assistant_service.adapters.config.memory import InMemoryConfigRepository
from assistant_service.adapters.llm.scripted import ScriptedModel, call_tool, call_tools, reply
from assistant_service.adapters.state.memory import InMemoryStateStore
from assistant_service.adapters.tools import FunctionToolRegistry
from assistant_service.application.service import AssistantService
from assistant_service.domain.errors import ConflictError, LeaseLostError
from assistant_service.domain.events import RunCompleted, RunFailed, ToolCallStarted
from assistant_service.domain.models import AssistantProfile, Role, RunLimits
from support.servers import firestore_emulator, redis_server  # noqa: F401 -- fixtures
from support.state_backends import STATE_BACKENDS, StateBackend, state_backend_opener

pytestmark = pytest.mark.anyio


class Gate:
    """A tool that waits until the test opens the gate."""

    def __init__(self) -> None:
        self.entered = anyio.Event()
        self.opened = anyio.Event()
        self.cancelled = False

    async def wait(self) -> str:
        """Wait for the gate."""
        self.entered.set()
        try:
            await self.opened.wait()
        except anyio.get_cancelled_exc_class():
            self.cancelled = True
            raise
        return "opened"


async def entered(gate: Gate) -> None:
    """Wait until the tool runs: a run that never reaches it fails the test, never hangs it."""
    with anyio.fail_after(10):
        await gate.entered.wait()


@pytest.fixture
def gate() -> Gate:
    return Gate()


def instance(store, gate: Gate, *, lock_ttl: float = 30.0) -> AssistantService:
    registry = FunctionToolRegistry()
    registry.register(gate.wait, namespace="t", name="wait")
    profile = AssistantProfile(
        id="a", model="scripted", tools=("t.wait",), limits=RunLimits(tool_timeout=30.0)
    )
    return AssistantService(
        model=ScriptedModel(store=store),
        state=store,
        configs=InMemoryConfigRepository.of(profile),
        tools=registry,
        default_assistant_id="a",
        lock_ttl=lock_ttl,
    )


def script(service: AssistantService, *steps) -> None:
    service._model.script(*steps)


async def collect(service: AssistantService, conversation: str, message: str, into: list) -> None:
    """Read a whole run's events into ``into`` (run it in a task: tools run while it reads)."""
    async with aclosing(service.stream(conversation, message)) as events:
        into.extend([event async for event in events])


@pytest.fixture(params=STATE_BACKENDS)
async def backend(request):
    backend = StateBackend(request.param, state_backend_opener(request.param, request))
    try:
        yield backend
    finally:
        await backend.aclose()


async def test_a_conversation_started_on_one_instance_continues_on_another(backend, gate):
    first, second = instance(backend.store, gate), instance(backend.instance(), gate)
    conversation = await first.start_conversation()
    script(first, reply("Hello from A."))
    await first.chat(conversation, "hi A")
    script(second, reply("Hello from B."))
    await second.chat(conversation, "hi B")
    texts = [(m.role, m.text) for m in await second.history(conversation)]
    assert texts == [
        (Role.USER, "hi A"),
        (Role.ASSISTANT, "Hello from A."),
        (Role.USER, "hi B"),
        (Role.ASSISTANT, "Hello from B."),
    ]


async def test_a_second_run_on_another_instance_is_refused_until_the_first_ends(backend, gate):
    first, second = instance(backend.store, gate), instance(backend.instance(), gate)
    conversation = await first.start_conversation()
    script(first, call_tools(call_tool("t.wait")), reply("done"))
    events: list = []
    async with anyio.create_task_group() as group:
        group.start_soon(collect, first, conversation, "wait", events)
        await entered(gate)
        with pytest.raises(ConflictError):
            await second.chat(conversation, "me too")
        gate.opened.set()
    assert isinstance(events[-1], RunCompleted)
    script(second, reply("my turn"))
    assert (await second.chat(conversation, "now?")).texts == ["my turn"]


async def test_closing_a_stream_early_frees_the_conversation_at_once(backend, gate):
    first, second = instance(backend.store, gate), instance(backend.instance(), gate)
    conversation = await first.start_conversation()
    script(first, call_tools(call_tool("t.wait")))
    async with aclosing(first.stream(conversation, "wait")) as events:
        async for event in events:
            if isinstance(event, ToolCallStarted):
                break
    script(second, reply("free"))
    assert (await second.chat(conversation, "next")).texts == ["free"]


async def test_a_cancelled_run_frees_the_conversation(backend, gate):
    first, second = instance(backend.store, gate), instance(backend.instance(), gate)
    conversation = await first.start_conversation()
    script(first, call_tools(call_tool("t.wait")))
    with anyio.move_on_after(5):
        async with anyio.create_task_group() as group:
            group.start_soon(collect, first, conversation, "wait", [])
            await entered(gate)
            group.cancel_scope.cancel()
    assert gate.cancelled
    script(second, reply("after the cancel"))
    result = await second.chat(conversation, "next")
    assert result.texts == ["after the cancel"]


@pytest.mark.parametrize("backend", STATE_BACKENDS[:2], indirect=True)  # memory, redis
async def test_the_lease_is_renewed_while_a_tool_round_outlasts_its_ttl(backend, gate):
    # A 0.9 s lease held through a 2 s tool round: without renewal the second
    # instance would take the conversation over mid-run.
    first = instance(backend.store, gate, lock_ttl=0.9)
    second = instance(backend.instance(), gate, lock_ttl=0.9)
    conversation = await first.start_conversation()
    script(first, call_tools(call_tool("t.wait")), reply("done"))
    async with anyio.create_task_group() as group:
        group.start_soon(collect, first, conversation, "wait", [])
        await entered(gate)
        await anyio.sleep(2.0)
        with pytest.raises(ConflictError):
            await second.chat(conversation, "taking over?")
        gate.opened.set()
    script(second, reply("mine now"))
    assert (await second.chat(conversation, "now")).texts == ["mine now"]


async def test_a_run_whose_lease_was_taken_over_writes_nothing_and_fails(gate):
    # The store's clock jumps past the ttl while the tool runs (a process paused
    # that long): another holder takes the lease; the first run's write is fenced out.
    now = [0.0]
    store = InMemoryStateStore(clock=lambda: now[0])
    service = instance(store, gate)
    conversation = await service.start_conversation()
    script(service, call_tools(call_tool("t.wait")), reply("too late"))
    events: list = []
    async with anyio.create_task_group() as group:
        group.start_soon(collect, service, conversation, "wait", events)
        await entered(gate)
        now[0] += 31.0
        await store.acquire(conversation, "run_intruder", 30.0)
        gate.opened.set()
    assert isinstance(events[-1], RunFailed)
    assert isinstance(events[-1].error, LeaseLostError)
    # The tool output and "too late" were refused: the history ends at the call.
    items = await store.items(conversation)
    assert [item["type"] for item in items] == ["message", "tool_call"]


async def test_a_renewal_that_fails_during_a_tool_round_cancels_the_tools_and_fails_the_run(gate):
    now = [0.0]
    store = InMemoryStateStore(clock=lambda: now[0])
    service = instance(store, gate, lock_ttl=0.3)
    conversation = await service.start_conversation()
    script(service, call_tools(call_tool("t.wait")), reply("never"))
    events: list = []
    with anyio.fail_after(5):
        async with anyio.create_task_group() as group:
            group.start_soon(collect, service, conversation, "wait", events)
            await entered(gate)
            now[0] += 1.0  # the lease lapsed; the next renewal (within 0.1 s) finds it lost
            await store.acquire(conversation, "run_intruder", 30.0)
    assert gate.cancelled
    assert isinstance(events[-1], RunFailed)
    assert events[-1].error.code == "lease_lost"
    assert not any(isinstance(event, RunCompleted) for event in events)


class SlowRenewals(InMemoryStateStore):
    """A store whose renewals take a while, as a network round trip does."""

    async def renew(self, lease) -> None:
        await anyio.sleep(0.5)
        await super().renew(lease)


async def test_a_run_whose_lease_lapsed_in_a_tool_round_does_not_ask_the_model_again():
    # The round ends while a renewal is on its way (the renewal is then cancelled),
    # and an intruder took the lease meanwhile (the run was paused past its ttl).
    # Asking the model now is wasted, and on a backend whose model keeps the
    # conversation (Responses + Conversations) an unfenced write: check first.
    now = [0.0]
    store = SlowRenewals(clock=lambda: now[0])
    registry = FunctionToolRegistry()

    async def stall() -> str:
        """Stall past the first renewal (due after 0.1 s)."""
        now[0] += 1.0
        await store.acquire(conversation, "run_intruder", 30.0)
        await anyio.sleep(0.2)
        return "stalled"

    registry.register(stall, namespace="t", name="stall")
    profile = AssistantProfile(id="a", model="scripted", tools=("t.stall",))
    model = ScriptedModel(store=store)
    service = AssistantService(
        model=model,
        state=store,
        configs=InMemoryConfigRepository.of(profile),
        tools=registry,
        default_assistant_id="a",
        lock_ttl=0.3,
    )
    conversation = await service.start_conversation()
    model.script(call_tools(call_tool("t.stall")), reply("too late"))
    events: list = []
    with anyio.fail_after(5):
        await collect(service, conversation, "stall", events)
    assert isinstance(events[-1], RunFailed)
    assert events[-1].error.code == "lease_lost"
    assert len(model.requests) == 1
