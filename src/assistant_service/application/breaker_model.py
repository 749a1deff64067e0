"""A language model behind a circuit breaker: the upstream's faults open it, calls then fail fast."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, TypeVar

import attrs

from assistant_service.application.circuit_breaker import CircuitBreaker
from assistant_service.domain.leases import Lease
from assistant_service.domain.models import AssistantProfile, Conversation, Message
from assistant_service.domain.steps import ModelEvent, StepInput
from assistant_service.domain.tools import ToolSpec
from assistant_service.ports.language_model import LanguageModel

T = TypeVar("T")


@attrs.define
class CircuitBreakerModel:
    """``model`` with every call that reaches its upstream let through by ``breaker``.

    A step counts from its first event to its end: a fault midway counts, a
    caller that stops reading early gives no verdict, and a step that ends
    (or an upstream's refusal of it) is what proves the upstream up: it resets
    the count and closes a half-open breaker. ``conversations_upstream`` says
    whether opening, finding and listing conversations reach the upstream
    (Responses on the Conversations API, Assistants): they then fail fast while
    the breaker is open and their faults count, but their successes prove
    nothing (a conversation found in a cache reached nothing; a conversations
    API that answers says little of the model behind it). ``False`` for
    backends that keep conversations here (Chat Completions, Responses with
    local state): those calls bypass the breaker. Raises
    ``UpstreamCircuitOpenError`` while the breaker refuses calls.
    """

    model: LanguageModel
    breaker: CircuitBreaker
    conversations_upstream: bool = True

    async def open_conversation(
        self, profile: AssistantProfile, metadata: Mapping[str, str] | None = None
    ) -> Conversation:
        return await self._conversation_call(
            lambda: self.model.open_conversation(profile, metadata)
        )

    async def get_conversation(self, conversation_id: str) -> Conversation:
        return await self._conversation_call(lambda: self.model.get_conversation(conversation_id))

    async def history(self, conversation_id: str) -> list[Message]:
        return await self._conversation_call(lambda: self.model.history(conversation_id))

    async def stream_step(
        self,
        conversation: Conversation,
        profile: AssistantProfile,
        step: StepInput,
        tools: Sequence[ToolSpec],
        *,
        lease: Lease | None = None,
    ) -> AsyncIterator[ModelEvent]:
        permit = self.breaker.admit()
        error: BaseException | None = None
        events = self.model.stream_step(conversation, profile, step, tools, lease=lease)
        try:
            async for event in events:
                yield event
        except BaseException as raised:  # GeneratorExit and cancellation give no verdict
            error = raised
            raise
        finally:
            try:
                close = getattr(events, "aclose", None)
                if close is not None:
                    await close()
            finally:
                self.breaker.record(permit, error)

    async def _conversation_call(self, call: Callable[[], Awaitable[T]]) -> T:
        if not self.conversations_upstream:
            return await call()
        # Admitted before the call is made: a refused call creates no coroutine to leak.
        permit = self.breaker.admit()
        try:
            result = await call()
        except BaseException as error:
            self.breaker.record(permit, error, answer_counts=False)
            raise
        self.breaker.record(permit, None, answer_counts=False)
        return result


if TYPE_CHECKING:

    def _satisfies_the_port(model: CircuitBreakerModel) -> LanguageModel:
        return model  # mypy checks the structural fit here
