"""Run events: what a run emits while it happens. A closed union; ``type`` names each.

Every event carries its run's ``run_id`` and ``seq``: 1, 2, 3... per run, with
no gaps, numbered by the facade as it emits them (``0`` before that). A
client that lost its stream resumes after the last ``seq`` it saw.
"""

from __future__ import annotations

from typing import ClassVar

import attrs

from assistant_service.domain.errors import AssistantServiceError
from assistant_service.domain.models import Message, RunResult
from assistant_service.domain.tools import ToolCall, ToolOutcome


@attrs.frozen
class RunStarted:
    type: ClassVar[str] = "run.started"
    run_id: str
    conversation_id: str
    assistant_id: str
    # The run this one continues (after approvals), if any.
    resumes: str | None = None
    seq: int = attrs.field(default=0, kw_only=True)


@attrs.frozen
class TextDelta:
    type: ClassVar[str] = "message.delta"
    run_id: str
    text: str
    seq: int = attrs.field(default=0, kw_only=True)


@attrs.frozen
class MessageCompleted:
    type: ClassVar[str] = "message.completed"
    run_id: str
    message: Message
    seq: int = attrs.field(default=0, kw_only=True)


@attrs.frozen
class ToolCallStarted:
    type: ClassVar[str] = "tool_call.started"
    run_id: str
    call: ToolCall
    seq: int = attrs.field(default=0, kw_only=True)


@attrs.frozen
class ToolCallCompleted:
    type: ClassVar[str] = "tool_call.completed"
    run_id: str
    outcome: ToolOutcome
    seq: int = attrs.field(default=0, kw_only=True)


@attrs.frozen
class RunCompleted:
    type: ClassVar[str] = "run.completed"
    run_id: str
    result: RunResult
    seq: int = attrs.field(default=0, kw_only=True)


@attrs.frozen
class RunFailed:
    """The run ended with ``error``; ``result`` holds what it produced before."""

    type: ClassVar[str] = "run.failed"
    run_id: str
    error: AssistantServiceError
    result: RunResult
    seq: int = attrs.field(default=0, kw_only=True)


@attrs.frozen
class ToolApprovalRequired:
    """The model asked for a tool that needs a person's approval: it has not run."""

    type: ClassVar[str] = "tool_call.approval_required"
    run_id: str
    call: ToolCall
    seq: int = attrs.field(default=0, kw_only=True)


@attrs.frozen
class RunRequiresApproval:
    """The run stopped before tools that need approval; ``result.pending`` lists them."""

    type: ClassVar[str] = "run.requires_approval"
    run_id: str
    result: RunResult
    # Every call of the round it stopped in, in order: those that needed no
    # approval ran (their outcomes end ``result.tool_outcomes``).
    stopped_round: tuple[ToolCall, ...] = ()
    seq: int = attrs.field(default=0, kw_only=True)


@attrs.frozen
class RunCancelled:
    """Someone cancelled the run; ``result`` holds what it produced before."""

    type: ClassVar[str] = "run.cancelled"
    run_id: str
    result: RunResult
    seq: int = attrs.field(default=0, kw_only=True)


RunEvent = (
    RunStarted
    | TextDelta
    | MessageCompleted
    | ToolCallStarted
    | ToolCallCompleted
    | ToolApprovalRequired
    | RunCompleted
    | RunFailed
    | RunCancelled
    | RunRequiresApproval
)

# The events a run ends with: exactly one, always the last.
FinalEvent = RunCompleted | RunFailed | RunCancelled | RunRequiresApproval
FINAL_EVENTS = (RunCompleted, RunFailed, RunCancelled, RunRequiresApproval)
