"""The language-model port on Chat Completions, for any OpenAI-compatible server.

vLLM, Ollama, llama.cpp and LiteLLM keep no conversations, so this adapter
keeps them in a :class:`~assistant_service.ports.conversations.ConversationStore`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import attrs
from openai import AsyncOpenAI

from assistant_service.adapters.llm.openai._calls import (
    MalformedEventError,
    StepGuard,
    malformed,
    upstream_call,
)
from assistant_service.adapters.llm.openai._client import post_stream
from assistant_service.adapters.llm.openai._tools import function_tools
from assistant_service.adapters.llm.openai.chat._history import (
    history_messages,
    interrupted_replies,
    pending_calls,
    request_messages,
    tool_reply,
    user_message,
)
from assistant_service.adapters.llm.openai.chat._stream import (
    USABLE_FINISH,
    ChatStepAssembler,
)
from assistant_service.adapters.state.memory import InMemoryStateStore
from assistant_service.domain.errors import UpstreamError
from assistant_service.domain.leases import Lease
from assistant_service.domain.models import AssistantProfile, Conversation, Message
from assistant_service.domain.steps import (
    ModelEvent,
    ModelMessage,
    ModelTextDelta,
    ModelToolCall,
    ModelUsage,
    StepInput,
    UserInput,
)
from assistant_service.domain.tools import ToolSpec
from assistant_service.ports.conversations import ConversationStore

BACKEND = "chat"


@attrs.define
class OpenAIChatModel:
    """A language model on streamed Chat Completions; history lives in ``store``.

    ``client`` is the process's shared ``AsyncOpenAI`` (its ``base_url`` names the
    server); the adapter never closes it. The system message comes from the
    profile's instructions at each request and is not stored. A step's messages
    (the user's or the tool replies, and the assistant's answer) are stored only
    when the step completes, so a failed step leaves the history as it was.
    Set ``include_usage=False`` for servers that reject ``stream_options``.
    """

    _client: AsyncOpenAI = attrs.field(alias="client")
    _store: ConversationStore = attrs.field(alias="store", factory=InMemoryStateStore)
    include_usage: bool = True
    step_timeout: float = 600.0
    max_step_events: int = 200_000

    async def open_conversation(
        self, profile: AssistantProfile, metadata: Mapping[str, str] | None = None
    ) -> Conversation:
        conversation = Conversation.new(profile.id, metadata, prefix="chat")
        await self._store.create(conversation)
        return conversation

    async def get_conversation(self, conversation_id: str) -> Conversation:
        return await self._store.get(conversation_id)

    async def stream_step(
        self,
        conversation: Conversation,
        profile: AssistantProfile,
        step: StepInput,
        tools: Sequence[ToolSpec],
        *,
        lease: Lease | None = None,
    ) -> AsyncIterator[ModelEvent]:
        stored = await self._store.items(conversation.id)
        new_items = _step_items(step, pending_calls(stored))
        system = (
            [{"role": "system", "content": profile.instructions}] if profile.instructions else []
        )
        messages = [*system, *request_messages([*stored, *new_items])]
        body: dict[str, Any] = {"model": profile.model, "messages": messages, "stream": True}
        if tools:
            body["tools"] = function_tools(tools)
        if profile.temperature is not None:
            body["temperature"] = profile.temperature
        if self.include_usage:
            body["stream_options"] = {"include_usage": True}
        answer = ChatStepAssembler()
        guard = StepGuard(BACKEND, self.step_timeout, self.max_step_events)
        with upstream_call(
            BACKEND, "chat.completions.create", conversation_id=conversation.id, model=profile.model
        ):
            stream = await post_stream(self._client, "/chat/completions", body)
            async with stream:
                while (chunk := await guard.next(stream, "chunk")) is not None:
                    try:
                        text = answer.add(chunk)
                    except MalformedEventError as error:
                        raise malformed(BACKEND, "chunk", str(error)) from None
                    if text:
                        yield ModelTextDelta(text)
        _check_finished(answer)
        await self._store.append(
            conversation.id, [*new_items, answer.assistant_item()], fence=lease
        )
        if answer.refusal:
            yield ModelMessage(answer.refusal, refusal=True)
        elif answer.text:
            yield ModelMessage(answer.text)
        for call in answer.tool_calls():
            yield ModelToolCall(call)
        yield ModelUsage(answer.usage)

    async def history(self, conversation_id: str) -> list[Message]:
        return history_messages(await self._store.items(conversation_id))


def _step_items(step: StepInput, pending: list[str]) -> list[dict[str, Any]]:
    """The messages this step adds: interrupted replies first when a run died mid-round."""
    if isinstance(step, UserInput):
        return [*interrupted_replies(pending), user_message(step.text)]
    given = [outcome.call.id for outcome in step.outcomes]
    return [
        *(tool_reply(outcome.call.id, outcome.output) for outcome in step.outcomes),
        *interrupted_replies(call_id for call_id in pending if call_id not in given),
    ]


def _check_finished(answer: ChatStepAssembler) -> None:
    if answer.finish_reason is None:
        # A proxy that drops the connection between chunks can end the body cleanly.
        raise UpstreamError(
            "the model server ended the stream before the answer was finished", fault=True
        )
    if answer.finish_reason == "content_filter":
        raise UpstreamError("the model server's content filter stopped the answer")
    if answer.finish_reason not in USABLE_FINISH:
        # e.g. "abort" or "error" from local servers whose generation failed.
        raise UpstreamError(
            f"the model stopped without an answer: {answer.finish_reason[:40]}", fault=True
        )
    try:
        answer.finish()
    except MalformedEventError as error:
        raise malformed(BACKEND, "tool call", str(error)) from None
