"""Run events: what a run emits while it happens. A closed union; ``type`` names each."""

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


@attrs.frozen
class TextDelta:
    type: ClassVar[str] = "message.delta"
    run_id: str
    text: str


@attrs.frozen
class MessageCompleted:
    type: ClassVar[str] = "message.completed"
    run_id: str
    message: Message


@attrs.frozen
class ToolCallStarted:
    type: ClassVar[str] = "tool_call.started"
    run_id: str
    call: ToolCall


@attrs.frozen
class ToolCallCompleted:
    type: ClassVar[str] = "tool_call.completed"
    run_id: str
    outcome: ToolOutcome


@attrs.frozen
class RunCompleted:
    type: ClassVar[str] = "run.completed"
    run_id: str
    result: RunResult


@attrs.frozen
class RunFailed:
    """The run ended with ``error``; ``result`` holds what it produced before."""

    type: ClassVar[str] = "run.failed"
    run_id: str
    error: AssistantServiceError
    result: RunResult


RunEvent = (
    RunStarted
    | TextDelta
    | MessageCompleted
    | ToolCallStarted
    | ToolCallCompleted
    | RunCompleted
    | RunFailed
)
