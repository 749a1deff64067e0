"""The language-model port."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Protocol

from assistant_service.domain.leases import Lease
from assistant_service.domain.models import AssistantProfile, Conversation, Message
from assistant_service.domain.steps import ModelEvent, StepInput
from assistant_service.domain.tools import ToolSpec


class LanguageModel(Protocol):
    """A model that holds conversations and streams one step at a time.

    A *step* is one model response: text deltas, completed messages, tool calls
    and usage. When a step asks for tools, the run loop invokes them and calls
    :meth:`stream_step` again with :class:`~assistant_service.domain.steps.ToolResults`.

    Errors: raise :class:`~assistant_service.domain.errors.NotFoundError` for an
    unknown conversation, ``UpstreamUnavailableError`` for retryable upstream
    failures and ``UpstreamError`` for the rest, never a vendor exception. A step
    that ended with tool calls whose results never arrived (the run died) must not
    break the next step: the adapter answers them as interrupted.
    """

    async def open_conversation(
        self, profile: AssistantProfile, metadata: Mapping[str, str] | None = None
    ) -> Conversation:
        """Create a conversation for ``profile``'s assistant."""
        ...

    async def get_conversation(self, conversation_id: str) -> Conversation:
        """Return the conversation; raise ``NotFoundError`` when there is none."""
        ...

    def stream_step(
        self,
        conversation: Conversation,
        profile: AssistantProfile,
        step: StepInput,
        tools: Sequence[ToolSpec],
        *,
        lease: Lease | None = None,
    ) -> AsyncIterator[ModelEvent]:
        """Run one model step and stream its events.

        ``lease`` is the run's hold on the conversation: an adapter that keeps
        history in a ``ConversationStore`` passes it as ``fence`` to every
        append, so a run that lost its lease writes nothing (``LeaseLostError``).
        """
        ...

    async def history(self, conversation_id: str) -> list[Message]:
        """The conversation's user and assistant messages, oldest first."""
        ...
