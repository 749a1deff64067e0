"""What the two ways of keeping Responses conversation state share.

A state keeper (:mod:`.openai_responses_conversations` on the server,
:mod:`.openai_responses_local` in a ConversationStore) opens and finds
conversations, prepares each step's input (answering interrupted tool calls
first) and records what a completed step produced.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Generic, Protocol, TypeVar

import attrs

from assistant_service.adapters.llm.openai._calls import malformed
from assistant_service.domain.leases import Lease
from assistant_service.domain.models import AssistantProfile, Conversation, Message, Role
from assistant_service.domain.steps import StepInput, ToolResults, UserInput
from assistant_service.domain.tools import INTERRUPTED_OUTPUT

K = TypeVar("K")
V = TypeVar("V")


@attrs.frozen
class PreparedStep:
    """The input of one ``responses.create`` call and how it keeps state.

    ``new_items`` are what this step adds to the conversation (repairs, then
    the user message or the tool outputs); ``params`` are the request's
    state arguments (``conversation=...`` or ``store=False``).
    """

    input: tuple[Mapping[str, Any], ...]
    new_items: tuple[Mapping[str, Any], ...]
    params: Mapping[str, Any]
    repaired: tuple[str, ...] = ()


class ResponsesState(Protocol):
    """Where a Responses adapter keeps its conversations."""

    async def open(
        self, profile: AssistantProfile, metadata: Mapping[str, str] | None
    ) -> Conversation: ...

    async def get(self, conversation_id: str) -> Conversation: ...

    async def prepare(self, conversation: Conversation, step: StepInput) -> PreparedStep: ...

    async def after_rejection(
        self, conversation: Conversation, prepared: PreparedStep
    ) -> PreparedStep | None:
        """A repaired step to retry once after the upstream refused ``prepared`` (400), if any."""
        ...

    async def commit(
        self,
        conversation: Conversation,
        prepared: PreparedStep,
        output_items: Sequence[Mapping[str, Any]],
        call_ids: Sequence[str],
        *,
        fence: Lease | None,
    ) -> None:
        """Record a completed step; ``fence`` is the run's lease, for a store's appends."""
        ...

    async def history(self, conversation_id: str) -> list[Message]: ...


def user_message(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


def call_output(call_id: str, output: str) -> dict[str, Any]:
    return {"type": "function_call_output", "call_id": call_id, "output": output}


def step_items(
    step: StepInput, unanswered: Iterable[str]
) -> tuple[list[dict[str, Any]], tuple[str, ...]]:
    """The items a step adds: interrupted outputs for ``unanswered`` calls first, then its own.

    Returns the items and the call ids answered as interrupted.
    """
    answered = {o.call.id for o in step.outcomes} if isinstance(step, ToolResults) else set()
    repaired = tuple(dict.fromkeys(c for c in unanswered if c not in answered))
    items = interrupted_outputs(repaired)
    if isinstance(step, UserInput):
        items.append(user_message(step.text))
    else:
        items.extend(call_output(o.call.id, o.output) for o in step.outcomes)
    return items, repaired


def interrupted_outputs(call_ids: Iterable[str]) -> list[dict[str, Any]]:
    """Outputs that tell the model these calls were cut off, so it can carry on."""
    return [call_output(call_id, INTERRUPTED_OUTPUT) for call_id in call_ids]


def unanswered_calls(items: Iterable[Mapping[str, Any]]) -> list[str]:
    """Call ids of ``function_call`` items with no ``function_call_output``, in order."""
    calls: list[str] = []
    answered: set[str] = set()
    for item in items:
        if item.get("type") == "function_call":
            calls.append(str(item.get("call_id")))
        elif item.get("type") == "function_call_output":
            answered.add(str(item.get("call_id")))
    return [call_id for call_id in calls if call_id not in answered]


def message_from_item(item: Mapping[str, Any]) -> Message | None:
    """The user or assistant message an item holds, if it holds one.

    Raises ``MalformedEventError`` for a message whose content is not text.
    """
    role = item.get("role")
    if item.get("type", "message") != "message" or role not in _ROLES:
        return None
    content = item.get("content")
    if isinstance(content, str):
        return Message(Role(role), content)
    if not isinstance(content, list | tuple | None):
        raise malformed(_BACKEND, "conversation item", "a message whose content is no list")
    texts = []
    for part in content or ():
        if not isinstance(part, Mapping):
            continue  # not text: an image, a file
        text = part.get("text") or part.get("refusal") or ""
        if not isinstance(text, str):
            raise malformed(_BACKEND, "conversation item", "a message part whose text is no string")
        texts.append(text)
    return Message(Role(role), "".join(texts))


_BACKEND = "responses"
_ROLES = ("user", "assistant")


@attrs.define
class BoundedMap(Generic[K, V]):
    """A dict that forgets its least recently set keys beyond ``limit``."""

    limit: int = 10_000
    _data: OrderedDict[K, V] = attrs.field(factory=OrderedDict, init=False)

    def get(self, key: K) -> V | None:
        return self._data.get(key)

    def set(self, key: K, value: V) -> None:
        self._data[key] = value
        self._data.move_to_end(key)
        while len(self._data) > self.limit:
            self._data.popitem(last=False)

    def pop(self, key: K) -> V | None:
        return self._data.pop(key, None)
