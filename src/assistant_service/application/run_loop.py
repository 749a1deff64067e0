"""The run loop: one user turn, from the user's message to the assistant's answer."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncGenerator
from functools import partial
from typing import TYPE_CHECKING

from assistant_service.application.observing import NO_RUN_OBSERVATION, observed_step
from assistant_service.application.tool_invocation import invoke_round
from assistant_service.domain.errors import AssistantServiceError, RunLimitError
from assistant_service.domain.events import (
    MessageCompleted,
    RunCompleted,
    RunEvent,
    RunFailed,
    RunStarted,
    TextDelta,
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
from assistant_service.domain.steps import (
    ModelMessage,
    ModelTextDelta,
    ModelToolCall,
    ModelUsage,
    StepInput,
    ToolResults,
    UserInput,
)
from assistant_service.domain.tools import ToolCall, ToolOutcome

if TYPE_CHECKING:
    from assistant_service.application.lease_keeper import LeaseKeeper
    from assistant_service.ports.language_model import LanguageModel
    from assistant_service.ports.observer import RunObservation
    from assistant_service.ports.tools import ToolRegistry

log = logging.getLogger(__name__)


def new_run_id() -> str:
    return f"run_{uuid.uuid4().hex}"


async def run_turn(  # noqa: C901, PLR0912, PLR0913 -- one loop, read top to bottom; keyword-only
    *,
    model: LanguageModel,
    tools: ToolRegistry,
    profile: AssistantProfile,
    conversation: Conversation,
    message: str,
    run_id: str | None = None,
    keeper: LeaseKeeper | None = None,
    observation: RunObservation = NO_RUN_OBSERVATION,
) -> AsyncGenerator[RunEvent, None]:
    """Stream the events of one run; the last event is ``RunCompleted`` or ``RunFailed``.

    Model errors end the run with ``RunFailed`` (never an exception); tool
    failures become tool outputs. Each round's ``ToolCallCompleted`` events come
    once every call of the round has finished, in call order: no task is left
    running while this generator is suspended, so cancelling or closing it
    cancels the tools in flight and leaks nothing.

    With ``keeper``, the run holds the conversation's lease: each step gets it
    (adapters fence their writes with it), it is renewed at events and during
    tool rounds, and a renewal that fails ends the run with ``RunFailed``.

    ``observation`` is told of each model step and tool call (the run's own
    start and end are the caller's to report: see ``observing.observed_run``).
    """
    run_id = run_id or new_run_id()
    messages: list[Message] = []
    outcomes: list[ToolOutcome] = []
    usage = Usage()
    rounds = 0

    def result(status: RunStatus) -> RunResult:
        return RunResult(
            run_id=run_id,
            conversation_id=conversation.id,
            status=status,
            messages=tuple(messages),
            tool_outcomes=tuple(outcomes),
            usage=usage,
            tool_rounds=rounds,
        )

    def failed(error: AssistantServiceError) -> RunFailed:
        log.warning(
            "run.failed",
            extra={"run_id": run_id, "error_code": error.code, "error": error.message},
        )
        return RunFailed(run_id, error, result(RunStatus.FAILED))

    lease = keeper.lease if keeper is not None else None
    yield RunStarted(run_id, conversation.id, profile.id)
    specs = tools.specs(profile.tools)
    step: StepInput = UserInput(message)
    while True:
        calls: list[ToolCall] = []
        stream = model.stream_step(conversation, profile, step, specs, lease=lease)
        if observation is not NO_RUN_OBSERVATION:
            stream = observed_step(stream, observation.step_started(rounds))
        try:
            async for event in stream:
                if keeper is not None:
                    await keeper.tick()
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
        except AssistantServiceError as error:
            yield failed(error)
            return
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
        rounds += 1
        for call in calls:
            yield ToolCallStarted(run_id, call)
        invoke = partial(invoke_round, calls, tools, profile.tools, profile.limits, observation)
        try:
            round_outcomes = await (invoke() if keeper is None else keeper.beside(invoke))
        except AssistantServiceError as error:
            yield failed(error)
            return
        for outcome in round_outcomes:
            outcomes.append(outcome)
            yield ToolCallCompleted(run_id, outcome)
        step = ToolResults(tuple(round_outcomes))
