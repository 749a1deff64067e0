"""A language model that needs no network: scripted by tests, or answering offline for demos."""

from __future__ import annotations

import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any

import anyio
import attrs

from assistant_service.adapters.state.memory import InMemoryStateStore
from assistant_service.domain.errors import AssistantServiceError, UpstreamError
from assistant_service.domain.leases import Lease
from assistant_service.domain.models import (
    AssistantProfile,
    Conversation,
    Message,
    Role,
    Usage,
)
from assistant_service.domain.steps import (
    ModelEvent,
    ModelMessage,
    ModelTextDelta,
    ModelToolCall,
    ModelUsage,
    StepInput,
    ToolResults,
    UserInput,
)
from assistant_service.domain.tools import INTERRUPTED_OUTPUT, ToolCall, ToolSpec
from assistant_service.ports.conversations import ConversationStore


@attrs.frozen
class ScriptedStep:
    """What the model does in one step: say ``text`` (in ``deltas``), call tools, or fail.

    ``delay`` waits before each delta, so tests can cancel mid-stream.
    """

    text: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    error: AssistantServiceError | None = None
    deltas: tuple[str, ...] | None = None
    delay: float = 0.0
    usage: Usage = Usage()

    def pieces(self) -> tuple[str, ...]:
        if self.deltas is not None:
            return self.deltas
        return split_into_deltas(self.text or "")


def reply(text: str, *, deltas: Sequence[str] | None = None, delay: float = 0.0) -> ScriptedStep:
    """A step that answers with ``text``."""
    return ScriptedStep(text=text, deltas=None if deltas is None else tuple(deltas), delay=delay)


def call_tool(
    name: str, arguments: Mapping[str, Any] | str = "{}", *, call_id: str | None = None
) -> ToolCall:
    """A tool call as the model would make it; ``arguments`` may be raw (even invalid) JSON."""
    import json  # noqa: PLC0415 -- only scripts need it

    raw = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return ToolCall(call_id or f"call_{uuid.uuid4().hex[:12]}", name, raw)


def call_tools(*calls: ToolCall, text: str | None = None) -> ScriptedStep:
    """A step that asks for ``calls`` (several run in parallel), optionally saying ``text`` first."""
    return ScriptedStep(text=text, tool_calls=tuple(calls))


def fail(error: AssistantServiceError, *, after_text: str | None = None) -> ScriptedStep:
    """A step that fails with ``error``, after streaming ``after_text`` if given."""
    return ScriptedStep(text=after_text, error=error)


def split_into_deltas(text: str, words_per_delta: int = 2) -> tuple[str, ...]:
    """Split ``text`` into deltas of a few words each, as a streaming model sends them."""
    words = text.split(" ")
    pieces = [
        " ".join(words[start : start + words_per_delta])
        for start in range(0, len(words), words_per_delta)
    ]
    return tuple(piece + " " for piece in pieces[:-1]) + tuple(pieces[-1:]) if text else ()


@attrs.frozen
class StepRequest:
    """What one step received; tests read these from ``ScriptedModel.requests``."""

    conversation_id: str
    profile: AssistantProfile
    step: StepInput
    tools: tuple[ToolSpec, ...]
    repaired_calls: tuple[str, ...] = ()


Responder = Callable[[StepRequest, list[Message]], ScriptedStep]


def _script_exhausted(request: StepRequest, _history: list[Message]) -> ScriptedStep:
    return fail(UpstreamError(f"the scripted model has no step left for {request.conversation_id}"))


@attrs.define
class ScriptedModel:
    """A language model played from a script, with no network.

    Queue steps with :meth:`script`; each model step takes the next one. When
    the script is empty, ``responder`` decides (by default the step fails with
    ``UpstreamError``; :func:`~assistant_service.adapters.llm.offline.offline_model` answers like a small demo model).
    Conversations and history live in ``store``. Tool calls left unanswered by a
    run that died are answered as interrupted on the next step.
    """

    store: ConversationStore = attrs.field(factory=InMemoryStateStore)
    responder: Responder = _script_exhausted
    requests: list[StepRequest] = attrs.field(factory=list, init=False)
    _script: deque[ScriptedStep] = attrs.field(factory=deque, init=False)

    def script(self, *steps: ScriptedStep) -> ScriptedModel:
        """Queue ``steps``; returns the model so calls chain."""
        self._script.extend(steps)
        return self

    @property
    def remaining_steps(self) -> int:
        return len(self._script)

    async def open_conversation(
        self, profile: AssistantProfile, metadata: Mapping[str, str] | None = None
    ) -> Conversation:
        conversation = Conversation.new(profile.id, metadata)
        await self.store.create(conversation)
        return conversation

    async def get_conversation(self, conversation_id: str) -> Conversation:
        return await self.store.get(conversation_id)

    async def stream_step(
        self,
        conversation: Conversation,
        profile: AssistantProfile,
        step: StepInput,
        tools: Sequence[ToolSpec],
        *,
        lease: Lease | None = None,
    ) -> AsyncIterator[ModelEvent]:
        items = await self.store.items(conversation.id)  # read once per step
        repaired = await self._repair_interrupted_calls(conversation.id, items, step, lease)
        request = StepRequest(conversation.id, profile, step, tuple(tools), repaired)
        self.requests.append(request)
        if self._script:
            scripted = self._script.popleft()
        else:
            scripted = self.responder(request, _messages(items))

        for piece in scripted.pieces():
            if scripted.delay:
                await anyio.sleep(scripted.delay)
            yield ModelTextDelta(piece)
        if scripted.error is not None:
            # Nothing of a failed step is kept, as a real backend keeps no failed response.
            raise scripted.error
        await self._record(conversation.id, step, scripted, lease)
        if scripted.text:
            yield ModelMessage(scripted.text)
        for call in scripted.tool_calls:
            yield ModelToolCall(call)
        yield ModelUsage(scripted.usage)

    async def history(self, conversation_id: str) -> list[Message]:
        return _messages(await self.store.items(conversation_id))

    async def _record(
        self, conversation_id: str, step: StepInput, scripted: ScriptedStep, lease: Lease | None
    ) -> None:
        items: list[dict[str, Any]] = []
        if isinstance(step, UserInput):
            items.append({"type": "message", "role": "user", "text": step.text})
        else:
            items.extend(
                {"type": "tool_output", "call_id": o.call.id, "output": o.output}
                for o in step.outcomes
            )
        if scripted.text:
            items.append({"type": "message", "role": "assistant", "text": scripted.text})
        items.extend(
            {"type": "tool_call", "call_id": c.id, "name": c.name, "arguments": c.arguments}
            for c in scripted.tool_calls
        )
        await self.store.append(conversation_id, items, fence=lease)

    async def _repair_interrupted_calls(
        self,
        conversation_id: str,
        items: list[Mapping[str, Any]],
        step: StepInput,
        lease: Lease | None,
    ) -> tuple[str, ...]:
        answered = {item["call_id"] for item in items if item.get("type") == "tool_output"}
        if isinstance(step, ToolResults):
            answered |= {outcome.call.id for outcome in step.outcomes}
        pending = [
            item["call_id"]
            for item in items
            if item.get("type") == "tool_call" and item["call_id"] not in answered
        ]
        if pending:
            await self.store.append(
                conversation_id,
                [
                    {"type": "tool_output", "call_id": call_id, "output": INTERRUPTED_OUTPUT}
                    for call_id in pending
                ],
                fence=lease,
            )
        return tuple(pending)


def _messages(items: list[Mapping[str, Any]]) -> list[Message]:
    return [
        Message(Role(item["role"]), item["text"]) for item in items if item.get("type") == "message"
    ]
