"""Tool values: what the model may call, what it asked for, and what happened."""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from typing import Any

import attrs

# What every language-model adapter answers for a tool call whose run died before
# it finished (the language-model port's contract), so the model can carry on.
INTERRUPTED_OUTPUT = '{"error": "interrupted: the run ended before this tool call finished"}'


@attrs.frozen
class ToolSpec:
    """A tool as the model sees it: name, description and JSON schema of its parameters."""

    name: str
    description: str
    parameters: Mapping[str, Any]
    strict: bool = True
    # A person approves each call before it runs (``@tool(requires_approval=True)``).
    requires_approval: bool = False


@attrs.frozen
class ToolCall:
    """The model's request to call a tool; ``arguments`` is raw JSON, untrusted."""

    id: str
    name: str
    arguments: str


class OutcomeStatus(str, enum.Enum):
    """What became of a tool call."""

    OK = "ok"
    ERROR = "error"  # the tool raised
    TIMEOUT = "timeout"
    INVALID_ARGUMENTS = "invalid_arguments"
    NOT_ALLOWED = "not_allowed"  # not in the assistant's tool list, or unknown
    SKIPPED = "skipped"  # over the per-round call limit
    DENIED = "denied"  # a person refused the call


@attrs.frozen
class ToolOutcome:
    """A finished tool call: the text handed back to the model and how it went."""

    call: ToolCall
    status: OutcomeStatus
    output: str
    duration: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status is OutcomeStatus.OK


@attrs.frozen
class BoundTool:
    """A tool call whose arguments were checked and converted, ready to run.

    ``function`` takes no arguments; it is a coroutine function when
    ``is_async`` is true, else a plain function the run loop calls in a worker
    thread. ``render`` turns its return value into the text the model reads.
    """

    function: Callable[[], Any]
    is_async: bool
    render: Callable[[Any], str]
