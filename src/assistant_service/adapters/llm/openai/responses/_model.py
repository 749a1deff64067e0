"""The default language model: OpenAI's Responses API, through the official SDK.

``OpenAIResponsesModel(client, state="conversations")`` keeps conversations on
the server (Conversations API); ``state="local"`` keeps them in a
ConversationStore and sends ``store=False`` (zero data retention, or a
Responses-compatible server without ``/v1/conversations``). Give every
adapter of the process the same client (:func:`make_openai_client`).

Each step is one streamed ``responses.create``. The correlation id bound by
the HTTP layer goes upstream as ``X-Client-Request-Id`` and into the log line
of every upstream call. Errors are the package's own (see
:mod:`.._errors`); a stream that fails, drops or sends a malformed event
fails the step and leaves the conversation usable; nothing of a failed step is
kept by this adapter.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import attrs
import openai

from assistant_service.adapters._logs import get_logger
from assistant_service.adapters.correlation import current_correlation_id
from assistant_service.adapters.llm.openai._calls import StepGuard
from assistant_service.adapters.llm.openai._client import (
    log_upstream_call,
    post_stream,
)
from assistant_service.adapters.llm.openai._errors import translate_openai_errors
from assistant_service.adapters.llm.openai._tools import responses_tool
from assistant_service.adapters.llm.openai.responses._conversations import ServerConversations
from assistant_service.adapters.llm.openai.responses._events import ResponseStepTranslator
from assistant_service.adapters.llm.openai.responses._local import LocalConversations
from assistant_service.adapters.llm.openai.responses._state import PreparedStep, ResponsesState
from assistant_service.adapters.observability import upstream
from assistant_service.adapters.state.memory import InMemoryStateStore
from assistant_service.domain.errors import (
    ConfigurationError,
    UpstreamUnavailableError,
)
from assistant_service.domain.leases import Lease
from assistant_service.domain.models import AssistantProfile, Conversation, Message
from assistant_service.domain.steps import ModelEvent, StepInput
from assistant_service.domain.tools import ToolSpec
from assistant_service.ports.conversations import ConversationStore
from assistant_service.ports.run_state import PendingCalls

BACKEND = "responses"
StateMode = Literal["conversations", "local"]
STATE_MODES: tuple[str, ...] = ("conversations", "local")

log = get_logger("assistant_service.openai")


@attrs.define(init=False)
class OpenAIResponsesModel:
    """A LanguageModel on the Responses API; conversation state per ``state``.

    ``store`` keeps the history in ``local`` mode and ``pending`` the
    unanswered tool calls in ``conversations`` mode; both are in memory by
    default (they then live as long as the process). Several instances share
    one Redis or Firestore state store for both. ``step_timeout`` bounds a whole
    streamed step and ``max_step_events`` its events, as on every backend.
    Raises ``ConfigurationError`` for an unknown ``state``.
    """

    _client: openai.AsyncOpenAI
    _state: ResponsesState
    state_mode: str
    step_timeout: float
    max_step_events: int

    def __init__(  # noqa: PLR0913 -- the options are keyword-only
        self,
        client: openai.AsyncOpenAI,
        *,
        state: StateMode | str = "conversations",
        store: ConversationStore | None = None,
        pending: PendingCalls | None = None,
        step_timeout: float = 600.0,
        max_step_events: int = 200_000,
    ) -> None:
        if state == "conversations":
            keeper: ResponsesState = ServerConversations(
                client=client, pending=pending or InMemoryStateStore()
            )
        elif state == "local":
            keeper = LocalConversations(store=store or InMemoryStateStore())
        else:
            raise ConfigurationError(
                f"unknown Responses state {state!r}: use one of {', '.join(STATE_MODES)}"
            )
        self.__attrs_init__(client, keeper, state, step_timeout, max_step_events)

    async def open_conversation(
        self, profile: AssistantProfile, metadata: Mapping[str, str] | None = None
    ) -> Conversation:
        return await self._state.open(profile, metadata)

    async def get_conversation(self, conversation_id: str) -> Conversation:
        return await self._state.get(conversation_id)

    async def history(self, conversation_id: str) -> list[Message]:
        return await self._state.history(conversation_id)

    async def stream_step(
        self,
        conversation: Conversation,
        profile: AssistantProfile,
        step: StepInput,
        tools: Sequence[ToolSpec],
        *,
        lease: Lease | None = None,
    ) -> AsyncIterator[ModelEvent]:
        prepared = await self._state.prepare(conversation, step)
        stream = await self._start(conversation, profile, prepared, tools, type(step).__name__)
        translator = ResponseStepTranslator()
        guard = StepGuard(BACKEND, self.step_timeout, self.max_step_events)
        committed = False
        try:
            while (event := await _next(stream, guard)) is not None:
                events = translator.feed(event)
                if translator.completed and not committed:
                    committed = True
                    # Stored before the last events go out: a caller that
                    # stops reading then still leaves a consistent history.
                    await self._state.commit(
                        conversation,
                        prepared,
                        translator.output_items,
                        translator.call_ids,
                        fence=lease,
                    )
                for model_event in events:
                    yield model_event
            # Read to the end even after response.completed (the body ends
            # right after): generators left suspended inside the SDK and
            # httpx2 are finalized later, out of order, by the GC.
        finally:
            await stream.close()
        if not translator.completed:
            raise UpstreamUnavailableError(
                "the response stream ended before the response did", fault=True
            )

    async def _start(
        self,
        conversation: Conversation,
        profile: AssistantProfile,
        prepared: PreparedStep,
        tools: Sequence[ToolSpec],
        step_kind: str,
    ) -> Any:
        with upstream.reported(BACKEND, "responses.create"), translate_openai_errors():
            try:
                return await self._create(conversation, profile, prepared, tools, step_kind)
            except openai.BadRequestError:
                repaired = await self._state.after_rejection(conversation, prepared)
                if repaired is None:
                    raise
                log.warning(
                    "openai.repairing_interrupted_calls",
                    conversation_id=conversation.id,
                    call_ids=list(repaired.repaired),
                    correlation_id=current_correlation_id(),
                )
                return await self._create(conversation, profile, repaired, tools, step_kind)

    async def _create(
        self,
        conversation: Conversation,
        profile: AssistantProfile,
        prepared: PreparedStep,
        tools: Sequence[ToolSpec],
        step_kind: str,
    ) -> Any:
        # The wire-format body, posted as it is (see post_stream).
        request: dict[str, Any] = {
            "model": profile.model,
            "input": prepared.input,
            "stream": True,
            **prepared.params,
        }
        if profile.instructions:
            request["instructions"] = profile.instructions
        if profile.temperature is not None:
            request["temperature"] = profile.temperature
        if tools:
            request["tools"] = [responses_tool(spec) for spec in tools]
        log_upstream_call(
            "responses.create",
            conversation_id=conversation.id,
            model=profile.model,
            state=self.state_mode,
            step=step_kind,
            repaired_calls=len(prepared.repaired),
        )
        return await post_stream(self._client, "/responses", request)


async def _next(stream: Any, guard: StepGuard) -> Any:
    """The stream's next event, ``None`` at its end; our errors for every failure."""
    with translate_openai_errors():
        return await guard.next(stream, "event")


if TYPE_CHECKING:
    from assistant_service.ports.language_model import LanguageModel

    def _satisfies_the_port(model: OpenAIResponsesModel) -> LanguageModel:
        return model  # mypy checks the structural fit here
