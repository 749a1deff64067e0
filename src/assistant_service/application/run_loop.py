"""The run loop: one user turn, from the user's message to the assistant's answer."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from functools import partial
from typing import TYPE_CHECKING, TypeVar

import attrs

from assistant_service.application.observing import NO_RUN_OBSERVATION, observed_step
from assistant_service.application.run_guard import RunCancelledSignal
from assistant_service.application.tool_invocation import invoke_round
from assistant_service.domain.errors import AssistantServiceError, RunLimitError
from assistant_service.domain.events import (
    MessageCompleted,
    RunCancelled,
    RunCompleted,
    RunEvent,
    RunFailed,
    RunRequiresApproval,
    RunStarted,
    TextDelta,
    ToolApprovalRequired,
    ToolCallCompleted,
    ToolCallStarted,
)
from assistant_service.domain.models import (
    AssistantProfile,
    Conversation,
    Message,
    Role,
    RunResult,
    RunStatus,
    Usage,
)
from assistant_service.domain.runs import ApprovalDecision
from assistant_service.domain.steps import (
    ModelMessage,
    ModelTextDelta,
    ModelToolCall,
    ModelUsage,
    StepInput,
    ToolResults,
    UserInput,
)
from assistant_service.domain.tools import OutcomeStatus, ToolCall, ToolOutcome

if TYPE_CHECKING:
    from assistant_service.application.run_guard import RunGuard
    from assistant_service.ports.language_model import LanguageModel
    from assistant_service.ports.observer import RunObservation
    from assistant_service.ports.tools import ToolRegistry

log = logging.getLogger(__name__)
T = TypeVar("T")


async def closing_at_exit(events: AsyncIterator[T]) -> AsyncIterator[T]:
    """``events``, closed however the loop over them ends (a model stream left
    half-read must not wait for the garbage collector to close its connection)."""
    try:
        async for event in events:
            yield event
    finally:
        close = getattr(events, "aclose", None)
        if close is not None:
            await close()


def new_run_id() -> str:
    return f"run_{uuid.uuid4().hex}"


@attrs.frozen
class Resumption:
    """A run that continues one stopped for approvals: its round, and the decisions on it."""

    resumes: str
    calls: tuple[ToolCall, ...]
    held: tuple[ToolOutcome, ...]
    decisions: Mapping[str, ApprovalDecision]


def denied_outcome(call: ToolCall, decision: ApprovalDecision) -> ToolOutcome:
    reason = f": {decision.reason}" if decision.reason else ""
    output = json.dumps({"error": f"denied: a person refused this call{reason}"})
    return ToolOutcome(call, OutcomeStatus.DENIED, output)


async def run_turn(  # noqa: C901, PLR0912, PLR0913, PLR0915 -- one loop, read top to bottom
    *,
    model: LanguageModel,
    tools: ToolRegistry,
    profile: AssistantProfile,
    conversation: Conversation,
    message: str | None = None,
    run_id: str | None = None,
    guard: RunGuard | None = None,
    resumption: Resumption | None = None,
    observation: RunObservation = NO_RUN_OBSERVATION,
) -> AsyncGenerator[RunEvent, None]:
    """Stream the events of one run; the last is ``RunCompleted``, ``RunFailed``,
    ``RunCancelled`` or ``RunRequiresApproval``.

    The run starts from the user's ``message``, or, with ``resumption``, from
    the round a stopped run left for approvals (approved calls run, denied ones
    answer the model with the reason). Model errors end the run with
    ``RunFailed`` (never an exception); tool failures become tool outputs. A
    round with calls that need approval (the profile's ``approval_required``
    or the tool's own flag) runs the calls that need none, then stops with
    ``RunRequiresApproval``. Each round's ``ToolCallCompleted`` events come
    once every call of the round has finished, in call order: no task is left
    running while this generator is suspended, so cancelling or closing it
    cancels the tools in flight and leaks nothing.

    With ``guard``, the run holds the conversation's lease: each step gets it
    (adapters fence their writes with it), it is renewed at events and during
    tool rounds, and a renewal that fails ends the run with ``RunFailed``; a
    cancel request heard by the guard ends it with ``RunCancelled``.

    ``observation`` is told of each model step and tool call (the run's own
    start and end are the caller's to report: see ``observing.observed_run``).
    """
    run_id = run_id or new_run_id()
    messages: list[Message] = []
    outcomes: list[ToolOutcome] = []
    usage = Usage()
    rounds = 0
    pending: tuple[ToolCall, ...] = ()

    def result(status: RunStatus) -> RunResult:
        return RunResult(
            run_id=run_id,
            conversation_id=conversation.id,
            status=status,
            messages=tuple(messages),
            tool_outcomes=tuple(outcomes),
            usage=usage,
            tool_rounds=rounds,
            pending=pending,
        )

    def failed(error: AssistantServiceError) -> RunFailed:
        log.warning(
            "run.failed",
            extra={"run_id": run_id, "error_code": error.code, "error": error.message},
        )
        return RunFailed(run_id, error, result(RunStatus.FAILED))

    async def invoke(calls: list[ToolCall]) -> list[ToolOutcome]:
        if not calls:
            return []
        run = partial(invoke_round, calls, tools, profile.tools, profile.limits, observation)
        return await (run() if guard is None else guard.beside(run))

    lease = guard.lease if guard is not None else None
    specs = tools.specs(profile.tools)
    needs_approval = frozenset(profile.approval_required) | {
        spec.name for spec in specs if spec.requires_approval
    }
    yield RunStarted(
        run_id, conversation.id, profile.id, resumption.resumes if resumption else None
    )
    try:
        if resumption is None:
            step: StepInput = UserInput(message or "")
        else:
            approved = [
                c
                for c in resumption.calls
                if c.id not in resumption.decisions or resumption.decisions[c.id].approve
            ]
            held = {o.call.id for o in resumption.held}
            to_run = [c for c in approved if c.id not in held]
            for call in to_run:
                yield ToolCallStarted(run_id, call)
            ran = {o.call.id: o for o in [*resumption.held, *await invoke(to_run)]}
            round_outcomes = [
                ran.get(c.id) or denied_outcome(c, resumption.decisions[c.id])
                for c in resumption.calls
            ]
            rounds += 1
            for outcome in round_outcomes:
                if outcome.call.id not in held:
                    outcomes.append(outcome)
                    yield ToolCallCompleted(run_id, outcome)
            step = ToolResults(tuple(round_outcomes))
        while True:
            calls: list[ToolCall] = []
            if guard is not None:
                # Before asking the model, not only at its events: a renewal a tool
                # round cut short is due now, and a lost lease must not ask again.
                await guard.tick()
            steps = model.stream_step(conversation, profile, step, specs, lease=lease)
            if observation is not NO_RUN_OBSERVATION:
                steps = observed_step(steps, observation.step_started(rounds))
            async for event in closing_at_exit(steps):
                if guard is not None:
                    await guard.tick()
                if isinstance(event, ModelTextDelta):
                    yield TextDelta(run_id, event.text)
                elif isinstance(event, ModelMessage):
                    completed = Message(Role.ASSISTANT, event.text)
                    messages.append(completed)
                    yield MessageCompleted(run_id, completed)
                elif isinstance(event, ModelToolCall):
                    calls.append(event.call)
                elif isinstance(event, ModelUsage):
                    usage += event.usage
            if not calls:
                yield RunCompleted(run_id, result(RunStatus.COMPLETED))
                return
            if rounds >= profile.limits.max_tool_rounds:
                # The calls stay unanswered; the adapter repairs them on the next step.
                limit = RunLimitError(
                    f"the assistant asked for tools more than {profile.limits.max_tool_rounds} "
                    "times in one run"
                )
                yield RunFailed(run_id, limit, result(RunStatus.FAILED))
                return
            waiting = [call for call in calls if call.name in needs_approval]
            free = [call for call in calls if call.name not in needs_approval]
            for call in free:
                yield ToolCallStarted(run_id, call)
            ran_now = await invoke(free) if waiting else []
            if waiting:
                # The calls that need no approval ran; the rest wait for a person.
                for outcome in ran_now:
                    outcomes.append(outcome)
                    yield ToolCallCompleted(run_id, outcome)
                for call in waiting:
                    yield ToolApprovalRequired(run_id, call)
                pending = tuple(waiting)
                yield RunRequiresApproval(
                    run_id, result(RunStatus.REQUIRES_APPROVAL), stopped_round=tuple(calls)
                )
                return
            rounds += 1
            round_outcomes = await invoke(calls)
            for outcome in round_outcomes:
                outcomes.append(outcome)
                yield ToolCallCompleted(run_id, outcome)
            step = ToolResults(tuple(round_outcomes))
    except AssistantServiceError as error:
        yield failed(error)
    except RunCancelledSignal:
        log.info("run.cancelled", extra={"run_id": run_id})
        yield RunCancelled(run_id, result(RunStatus.CANCELLED))
