"""Folding streamed Chat Completions chunks into one assistant message and its tool calls."""

from __future__ import annotations

import uuid
from typing import Any

import attrs

from assistant_service.adapters.llm.openai._calls import MalformedEventError
from assistant_service.adapters.llm.openai._tools import PartialCall, tool_call
from assistant_service.domain.models import Usage
from assistant_service.domain.tools import ToolCall

# A finish reason the answer can be used with; "length" keeps what came (a cut
# tool call fails its argument check and the model hears about it).
USABLE_FINISH = frozenset({"stop", "tool_calls", "length", "function_call"})


@attrs.define
class ChatStepAssembler:
    """Collects one streamed completion: text, refusal, tool calls by index, usage.

    Servers differ in what they repeat: the id and name come in the first delta
    of a call (later ones may repeat them), the arguments in pieces. A call
    without an id (some local servers) gets one, so its reply can refer to it.
    Bounded: at most ``max_tool_calls`` calls and ``max_chars`` characters.
    """

    max_tool_calls: int = 128
    max_chars: int = 4_000_000
    finish_reason: str | None = attrs.field(default=None, init=False)
    usage: Usage = attrs.field(factory=Usage, init=False)
    _text: list[str] = attrs.field(factory=list, init=False)
    _refusal: list[str] = attrs.field(factory=list, init=False)
    _calls: dict[int, PartialCall] = attrs.field(factory=dict, init=False)
    _chars: int = attrs.field(default=0, init=False)

    def add(self, chunk: Any) -> str:
        """Fold ``chunk`` in and return the text it adds ("" for none).

        Raises :class:`MalformedEventError` for a chunk of the wrong shape or one
        over the bounds.
        """
        try:
            return self._add(chunk)
        except (AttributeError, TypeError, ValueError, KeyError) as error:
            raise MalformedEventError(f"{type(error).__name__}: {error}") from None

    def finish(self) -> None:
        """Check the calls once the stream has ended; give an id to a call that came without.

        Raises :class:`MalformedEventError` for a call that never got a name.
        """
        for index, call in self._calls.items():
            if not call.name:
                raise MalformedEventError(f"tool call {index} has no function name")
            call.call_id = call.call_id or f"call_{uuid.uuid4().hex[:24]}"

    @property
    def text(self) -> str:
        return "".join(self._text)

    @property
    def refusal(self) -> str:
        return "".join(self._refusal)

    def tool_calls(self) -> list[ToolCall]:
        return [
            tool_call(call.call_id, call.name, call.arguments())
            for _, call in sorted(self._calls.items())
        ]

    def assistant_item(self) -> dict[str, Any]:
        """The assistant message to store, in the wire format the next request sends back."""
        # Content may be null only beside tool calls; a refusal is kept as what was said.
        content = self.text or self.refusal or (None if self._calls else "")
        item: dict[str, Any] = {"role": "assistant", "content": content}
        if self._calls:
            item["tool_calls"] = [
                {
                    "id": call.call_id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments()},
                }
                for _, call in sorted(self._calls.items())
            ]
        return item

    def _add(self, chunk: Any) -> str:
        # Chunks are the plain JSON the server sent (dicts), not SDK models.
        usage = chunk.get("usage")
        if usage is not None:
            self.usage = Usage(int(usage["prompt_tokens"]), int(usage["completion_tokens"]))
        added = ""
        for choice in chunk.get("choices") or ():
            if choice["index"] != 0:
                continue  # we ask for one choice; a server sending more is ignored, not merged
            delta = choice["delta"]
            content = delta.get("content")
            if content:
                piece = self._counted(_string(content, "content"))
                self._text.append(piece)
                added += piece
            refusal = delta.get("refusal")
            if refusal:
                self._refusal.append(self._counted(_string(refusal, "refusal")))
            for piece in delta.get("tool_calls") or ():
                self._add_call_piece(piece)
            finish_reason = choice.get("finish_reason")
            if finish_reason:
                self.finish_reason = _string(finish_reason, "finish_reason")
        return added

    def _add_call_piece(self, piece: Any) -> None:
        index = int(piece["index"])
        call = self._calls.get(index)
        if call is None:
            if len(self._calls) >= self.max_tool_calls:
                raise ValueError(f"more than {self.max_tool_calls} tool calls in one step")
            call = self._calls[index] = PartialCall()
        call_id = piece.get("id")
        if call_id and not call.call_id:
            call.call_id = _string(call_id, "tool call id")
        function = piece.get("function")
        if function is not None:
            name = function.get("name")
            if name and not call.name:
                call.name = _string(name, "function name")
            arguments = function.get("arguments")
            if arguments:
                call.add(self._counted(_string(arguments, "function arguments")))

    def _counted(self, piece: str) -> str:
        self._chars += len(piece)
        if self._chars > self.max_chars:
            raise ValueError(f"the answer is longer than {self.max_chars} characters")
        return piece


def _string(value: Any, what: str) -> str:
    # A number or an object where the API sends text: the chunk is malformed (add() says so).
    if not isinstance(value, str):
        raise TypeError(f"{what} is a {type(value).__name__}, not a string")
    return value
