"""One model step: what the run loop sends to the language model and what comes back."""

from __future__ import annotations

import attrs

from assistant_service.domain.models import Usage
from assistant_service.domain.tools import ToolCall, ToolOutcome


@attrs.frozen
class UserInput:
    """A step that starts a turn with the user's message."""

    text: str


@attrs.frozen
class ToolResults:
    """A step that hands the outputs of the previous step's tool calls back, in call order."""

    outcomes: tuple[ToolOutcome, ...]


StepInput = UserInput | ToolResults


@attrs.frozen
class ModelTextDelta:
    """A piece of the assistant's message text, as it streams."""

    text: str


@attrs.frozen
class ModelMessage:
    """A complete assistant message (its deltas, if any, came before)."""

    text: str
    refusal: bool = False


@attrs.frozen
class ModelToolCall:
    """The model asks for a tool; the step ends, the loop runs the calls, the next step follows."""

    call: ToolCall


@attrs.frozen
class ModelUsage:
    """Tokens used by this step."""

    usage: Usage


ModelEvent = ModelTextDelta | ModelMessage | ModelToolCall | ModelUsage
