"""Steering runs through the facade: numbered events, cancel, approvals, replay, background runs."""

from __future__ import annotations

from contextlib import aclosing

import anyio
import pytest

from assistant_service.adapters.config.memory import InMemoryConfigRepository
from assistant_service.adapters.llm.scripted import ScriptedModel, call_tool, call_tools, reply
from assistant_service.adapters.state.memory import InMemoryStateStore
from assistant_service.adapters.tools import FunctionToolRegistry
from assistant_service.application.service import AssistantService
from assistant_service.domain.errors import ConflictError, InvalidInputError, NotFoundError
from assistant_service.domain.events import (
    RunCancelled,
    RunCompleted,
    RunRequiresApproval,
    RunStarted,
    ToolApprovalRequired,
    ToolCallCompleted,
    ToolCallStarted,
)
from assistant_service.domain.models import AssistantProfile, RunLimits, RunStatus
from assistant_service.domain.runs import ApprovalDecision
from assistant_service.domain.steps import ToolResults
from assistant_service.domain.tools import OutcomeStatus

pytestmark = pytest.mark.anyio


class Bank:
    """Tools with side effects the tests can see."""

    def __init__(self) -> None:
        self.transfers: list[int] = []
        self.entered = anyio.Event()
        self.cancelled = False

    def transfer(self, amount: int) -> str:
        """Move money."""
        self.transfers.append(amount)
        return f"sent {amount}"

    def balance(self) -> str:
        """Read the balance."""
        return "100"

    async def slow(self) -> str:
        """Wait a long time."""
        self.entered.set()
        try:
            await anyio.sleep(30)
        except anyio.get_cancelled_exc_class():
            self.cancelled = True
            raise
        return "done"


@pytest.fixture
def bank() -> Bank:
    return Bank()


@pytest.fixture
def store() -> InMemoryStateStore:
    return InMemoryStateStore()


@pytest.fixture
def model(store) -> ScriptedModel:
    return ScriptedModel(store=store)


def make_service(model, store, bank, **profile) -> AssistantService:
    registry = FunctionToolRegistry()
    registry.register(bank.transfer, namespace="bank", requires_approval=True)
    registry.register(bank.balance, namespace="bank")
    registry.register(bank.slow, namespace="bank")
    assistant = AssistantProfile(
        id="a",
        model="scripted",
        tools=("bank.transfer", "bank.balance", "bank.slow"),
        limits=RunLimits(tool_timeout=60.0),
        **profile,
    )
    return AssistantService(
        model=model,
        state=store,
        configs=InMemoryConfigRepository.of(assistant),
        tools=registry,
        default_assistant_id="a",
    )


@pytest.fixture
def service(model, store, bank) -> AssistantService:
    return make_service(model, store, bank)


async def collect(events) -> list:
    async with aclosing(events) as stream:
        return [event async for event in stream]


async def test_events_are_numbered_from_one_with_no_gaps_and_logged(service, model, store):
    model.script(call_tools(call_tool("bank.balance")), reply("You have 100."))
    conversation = await service.start_conversation()
    events = await collect(service.stream(conversation, "balance?"))
    assert [event.seq for event in events] == list(range(1, len(events) + 1))
    run_id = events[0].run_id
    replayed = await collect(service.events(conversation, run_id))
    assert replayed == events
    tail = await collect(service.events(conversation, run_id, after=3))
    assert tail == events[3:]
    record = await service.run(conversation, run_id)
    assert record.status is RunStatus.COMPLETED
    assert record.result.texts == ["You have 100."]


async def test_a_tool_that_needs_approval_stops_the_run_and_never_runs_on_its_own(
    service, model, bank
):
    model.script(
        call_tools(
            call_tool("bank.transfer", {"amount": 50}, call_id="c_t"),
            call_tool("bank.balance", call_id="c_b"),
        )
    )
    conversation = await service.start_conversation()
    events = await collect(service.stream(conversation, "send 50"))
    assert bank.transfers == []
    [waiting] = [e for e in events if isinstance(e, ToolApprovalRequired)]
    assert waiting.call.id == "c_t"
    final = events[-1]
    assert isinstance(final, RunRequiresApproval)
    assert final.result.status is RunStatus.REQUIRES_APPROVAL
    assert [c.id for c in final.result.pending] == ["c_t"]
    # The call that needed no approval ran at once.
    assert [o.call.id for o in final.result.tool_outcomes] == ["c_b"]


async def test_approving_runs_the_call_and_the_model_gets_every_output_in_call_order(
    service, model, bank
):
    model.script(
        call_tools(
            call_tool("bank.transfer", {"amount": 50}, call_id="c_t"),
            call_tool("bank.balance", call_id="c_b"),
        ),
        reply("Sent."),
    )
    conversation = await service.start_conversation()
    stopped = await service.chat(conversation, "send 50")
    decisions = [ApprovalDecision("c_t", approve=True)]
    events = await collect(service.decide(conversation, stopped.run_id, decisions))
    assert isinstance(events[0], RunStarted)
    assert events[0].resumes == stopped.run_id
    assert bank.transfers == [50]
    assert isinstance(events[-1], RunCompleted)
    assert events[-1].result.texts == ["Sent."]
    step = model.requests[-1].step
    assert isinstance(step, ToolResults)
    assert [(o.call.id, o.output) for o in step.outcomes] == [("c_t", "sent 50"), ("c_b", "100")]
    # A decision is taken once.
    with pytest.raises(ConflictError):
        await collect(service.decide(conversation, stopped.run_id, decisions))


async def test_a_denied_call_is_never_called_and_the_model_reads_the_reason(service, model, bank):
    model.script(
        call_tools(call_tool("bank.transfer", {"amount": 9}, call_id="c_t")), reply("OK, not sent.")
    )
    conversation = await service.start_conversation()
    stopped = await service.chat(conversation, "send 9")
    result = await service.approve(
        conversation, stopped.run_id, [ApprovalDecision("c_t", approve=False, reason="too much")]
    )
    assert result.texts == ["OK, not sent."]
    assert bank.transfers == []
    [outcome] = model.requests[-1].step.outcomes
    assert outcome.status is OutcomeStatus.DENIED
    assert "too much" in outcome.output


async def test_a_profile_can_require_approval_for_a_tool_without_the_flag(model, store, bank):
    service = make_service(model, store, bank, approval_required=("bank.balance",))
    model.script(call_tools(call_tool("bank.balance", call_id="c_b")))
    conversation = await service.start_conversation()
    result = await service.chat(conversation, "balance?")
    assert result.status is RunStatus.REQUIRES_APPROVAL
    assert [c.id for c in result.pending] == ["c_b"]


@pytest.mark.parametrize(
    ("decisions", "field"),
    [
        ([], "decisions"),
        ([ApprovalDecision("c_other", approve=True)], "c_other"),
        (
            [ApprovalDecision("c_t", approve=True), ApprovalDecision("c_t", approve=False)],
            "c_t",
        ),
    ],
)
async def test_decisions_must_cover_every_pending_call_once(service, model, decisions, field):
    model.script(call_tools(call_tool("bank.transfer", {"amount": 1}, call_id="c_t")))
    conversation = await service.start_conversation()
    stopped = await service.chat(conversation, "send 1")
    with pytest.raises(InvalidInputError) as caught:
        await collect(service.decide(conversation, stopped.run_id, decisions))
    assert field in caught.value.fields
    assert (await service.run(conversation, stopped.run_id)).awaits_decision


async def test_a_new_message_denies_what_waits_for_approval(service, model, bank):
    model.script(
        call_tools(call_tool("bank.transfer", {"amount": 5}, call_id="c_t")),
        reply("Something else?"),
    )
    conversation = await service.start_conversation()
    stopped = await service.chat(conversation, "send 5")
    await service.chat(conversation, "actually, no")
    assert bank.transfers == []
    with pytest.raises(ConflictError):
        await service.approve(conversation, stopped.run_id, [ApprovalDecision("c_t", True)])


async def test_cancel_stops_a_run_in_its_tool_round_and_the_next_turn_works(service, model, bank):
    model.script(call_tools(call_tool("bank.slow", call_id="c_s")))
    conversation = await service.start_conversation()
    events: list = []

    async def run() -> None:
        events.extend(await collect(service.stream(conversation, "wait")))

    with anyio.fail_after(5):
        async with anyio.create_task_group() as group:
            group.start_soon(run)
            await bank.entered.wait()
            run_id = _only_run(service)
            assert (await service.run(conversation, run_id)).status is RunStatus.IN_PROGRESS
            await service.cancel(conversation, run_id)
    assert bank.cancelled
    assert isinstance(events[-1], RunCancelled)
    assert events[-1].result.status is RunStatus.CANCELLED
    run_id = events[-1].run_id
    assert (await service.run(conversation, run_id)).status is RunStatus.CANCELLED
    with pytest.raises(ConflictError):
        await service.cancel(conversation, run_id)
    model.script(reply("fresh"))
    assert (await service.chat(conversation, "again")).texts == ["fresh"]
    assert model.requests[-1].repaired_calls == ("c_s",)  # answered before the model went on


def _only_run(service: AssistantService) -> str:
    [run_id] = service._guards  # the one run going on in this process
    return run_id


async def test_a_cancel_from_another_instance_is_heard(model, store, bank):
    first, second = make_service(model, store, bank), make_service(model, store, bank)
    model.script(call_tools(call_tool("bank.slow", call_id="c_s")))
    conversation = await first.start_conversation()
    events: list = []

    async def run() -> None:
        events.extend(await collect(first.stream(conversation, "wait")))

    # The tool sleeps 30 s: the run ending well before proves the request was heard.
    with anyio.fail_after(10):
        async with anyio.create_task_group() as group:
            group.start_soon(run)
            await bank.entered.wait()
            run_id = _only_run(first)
            # Not this process's run: the request goes through the store, polled by the run.
            await second.cancel(conversation, run_id)
    assert isinstance(events[-1], RunCancelled)
    assert bank.cancelled


async def test_unknown_runs_and_runs_of_another_conversation_are_not_found(service, model):
    model.script(reply("hi"), reply("hi"))
    conversation = await service.start_conversation()
    other = await service.start_conversation()
    result = await service.chat(conversation, "hello")
    with pytest.raises(NotFoundError):
        await service.run(other, result.run_id)
    with pytest.raises(NotFoundError):
        await service.cancel(conversation, "run_missing")
    with pytest.raises(NotFoundError):
        await collect(service.events(other, result.run_id))
    with pytest.raises(InvalidInputError):
        await service.run(conversation, "not a run id")


async def test_a_background_run_is_followed_to_its_end(service, model):
    model.script(call_tools(call_tool("bank.balance")), reply("done in the background"))
    conversation = await service.start_conversation()
    async with anyio.create_task_group() as group:
        run_id = await service.submit(conversation, "go", start_soon=group.start_soon)
        with pytest.raises(ConflictError):  # it holds the conversation
            await service.chat(conversation, "me too")
        followed = await collect(service.events(conversation, run_id))
    assert [e.seq for e in followed] == list(range(1, len(followed) + 1))
    assert isinstance(followed[-1], RunCompleted)
    assert any(isinstance(e, ToolCallCompleted) for e in followed)
    record = await service.run(conversation, run_id)
    assert record.status is RunStatus.COMPLETED
    assert record.result.texts == ["done in the background"]


async def test_a_run_cut_off_by_its_consumer_is_recorded_as_interrupted(service, model):
    model.script(call_tools(call_tool("bank.slow")))
    conversation = await service.start_conversation()
    async with aclosing(service.stream(conversation, "wait")) as events:
        async for event in events:
            if isinstance(event, ToolCallStarted):
                run_id = event.run_id
                break
    record = await service.run(conversation, run_id)
    assert record.status is RunStatus.FAILED
    assert record.error_code == "interrupted"


@pytest.mark.parametrize(
    ("script", "final_type", "status"),
    [
        ((reply("Done."),), RunCompleted, RunStatus.COMPLETED),
        ((call_tools(call_tool("bank.transfer", {"amount": 5})),), RunRequiresApproval,
         RunStatus.REQUIRES_APPROVAL),
    ],
)  # fmt: skip
async def test_when_the_final_event_arrives_the_run_is_recorded_and_the_thread_is_free(
    service, model, script, final_type, status
):
    # A client that reads the final event and at once asks for the run's status
    # (on any instance), or sends the next message, must not find the run still going.
    model.script(*script, reply("Next."))
    conversation = await service.start_conversation()
    async with aclosing(service.stream(conversation, "go")) as events:
        async for event in events:
            if isinstance(event, final_type):
                record = await service.run(conversation, event.run_id)
                assert record.status is status
                with anyio.fail_after(5):
                    result = await service.chat(conversation, "next")
                assert result.status is RunStatus.COMPLETED


async def test_when_run_cancelled_arrives_the_run_is_recorded_cancelled(service, model):
    model.script(call_tools(call_tool("bank.slow")), reply("Next."))
    conversation = await service.start_conversation()
    async with aclosing(service.stream(conversation, "wait")) as events:
        async for event in events:
            if isinstance(event, ToolCallStarted):
                await service.cancel(conversation, event.run_id)
            if isinstance(event, RunCancelled):
                record = await service.run(conversation, event.run_id)
                assert record.status is RunStatus.CANCELLED
                with anyio.fail_after(5):
                    result = await service.chat(conversation, "next")
                assert result.status is RunStatus.COMPLETED
