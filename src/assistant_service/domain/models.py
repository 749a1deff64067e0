"""Values of the domain: assistant profiles, conversations, messages, results."""

from __future__ import annotations

import enum
import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import Any

import attrs

from assistant_service.domain.tools import ToolCall, ToolOutcome


def _positive(_instance: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if value <= 0:
        raise ValueError(f"{attribute.name} must be positive, got {value!r}")


@attrs.frozen
class RunLimits:
    """Bounds of one run; every loop and payload of a run is bounded by these."""

    max_tool_rounds: int = attrs.field(default=8, validator=_positive)
    tool_timeout: float = attrs.field(default=30.0, validator=_positive)
    max_message_length: int = attrs.field(default=32_000, validator=_positive)
    max_tool_calls_per_round: int = attrs.field(default=16, validator=_positive)
    max_tool_output_length: int = attrs.field(default=20_000, validator=_positive)


def _names(names: Iterable[str]) -> tuple[str, ...]:
    if isinstance(names, str):
        raise TypeError("tools must be a list of tool names, not one string")
    return tuple(names)


@attrs.frozen
class AssistantProfile:
    """How one assistant behaves: its model, instructions, tools and limits."""

    id: str
    model: str
    instructions: str = ""
    tools: tuple[str, ...] = attrs.field(default=(), converter=_names)
    temperature: float | None = None
    limits: RunLimits = RunLimits()
    # Backend-specific settings, e.g. the remote id of an Assistants-API assistant.
    remote_id: str | None = None
    # Tools (of ``tools``) that never run on the model's word alone: a person approves each call.
    approval_required: tuple[str, ...] = attrs.field(default=(), converter=_names)

    @approval_required.validator
    def _only_its_tools(self, _attribute: attrs.Attribute[Any], value: tuple[str, ...]) -> None:
        unknown = [name for name in value if name not in self.tools]
        if unknown:
            raise ValueError(f"approval_required names tools it does not list: {unknown}")


@attrs.frozen
class Conversation:
    """A conversation with one assistant; ``id`` is opaque (``conv_...``, ``thread_...``)."""

    id: str
    assistant_id: str
    created_at: datetime
    metadata: Mapping[str, str] = attrs.field(factory=dict)

    @classmethod
    def new(
        cls, assistant_id: str, metadata: Mapping[str, str] | None = None, *, prefix: str = "conv"
    ) -> Conversation:
        """A conversation created now, with a fresh random id ``<prefix>_<hex>``."""
        return cls(
            id=f"{prefix}_{uuid.uuid4().hex}",
            assistant_id=assistant_id,
            created_at=datetime.now(timezone.utc),
            metadata=dict(metadata or {}),
        )


class Role(str, enum.Enum):
    """Who wrote a message."""

    USER = "user"
    ASSISTANT = "assistant"


@attrs.frozen
class Message:
    """One message of a conversation."""

    role: Role
    text: str


@attrs.frozen
class HistoryPage:
    """One page of a conversation's messages, oldest first.

    ``next_cursor`` is an opaque token that asks for the page after this one; it
    is ``None`` on the last page, so ``has_more`` cannot disagree with it.
    """

    messages: tuple[Message, ...]
    next_cursor: str | None = None

    @property
    def has_more(self) -> bool:
        """Whether messages follow this page (``next_cursor`` asks for them)."""
        return self.next_cursor is not None


@attrs.frozen
class Usage:
    """Tokens the model used; adds up over the steps of a run."""

    input_tokens: int = 0
    output_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
        )

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


class RunStatus(str, enum.Enum):
    """Where a run is: going on, or how it ended."""

    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    # It stopped before tools that need a person's approval; a decision continues it.
    REQUIRES_APPROVAL = "requires_approval"

    @property
    def ended(self) -> bool:
        return self is not RunStatus.IN_PROGRESS


@attrs.frozen
class RunResult:
    """What one run produced: the assistant's messages, the tool outcomes, usage."""

    run_id: str
    conversation_id: str
    status: RunStatus
    messages: tuple[Message, ...] = ()
    tool_outcomes: tuple[ToolOutcome, ...] = ()
    usage: Usage = Usage()
    tool_rounds: int = 0
    # Calls waiting for a person's decision (status ``requires_approval``).
    pending: tuple[ToolCall, ...] = ()

    @property
    def texts(self) -> list[str]:
        """The assistant's message texts, in order."""
        return [message.text for message in self.messages]
