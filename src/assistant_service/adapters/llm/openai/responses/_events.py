"""Turn the Responses API's stream events into the domain's model events.

One :class:`ResponseStepTranslator` per response: :meth:`feed` takes each
event, as the plain JSON it arrived in (dispatching on its ``type`` string),
and returns the model events it completes. It also gathers
the response's output items, so the state keeper can store them.

Text and refusal deltas stream as ``ModelTextDelta``; a message is complete at
``response.output_item.done``; a function call is complete when its item is
done (its arguments may have come in many ``function_call_arguments.delta``
pieces). Servers that skip per-item events are covered at
``response.completed``, from the response's ``output``.
``response.failed`` and ``error`` events raise; so does a malformed event
(:class:`MalformedEventError`): one without a type, a ``response.completed``
without its response, an item or part of the wrong shape, a function call
without a string ``call_id``, ``name`` or ``arguments``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import attrs

from assistant_service.adapters.llm.openai._calls import MalformedEventError
from assistant_service.adapters.llm.openai._errors import redact
from assistant_service.adapters.llm.openai._replies import SHAPE_ERRORS
from assistant_service.adapters.llm.openai._tools import PartialCall
from assistant_service.adapters.tools.naming import from_wire_name
from assistant_service.domain.errors import UpstreamError, UpstreamUnavailableError
from assistant_service.domain.models import Usage
from assistant_service.domain.steps import (
    ModelEvent,
    ModelMessage,
    ModelTextDelta,
    ModelToolCall,
    ModelUsage,
)
from assistant_service.domain.tools import ToolCall

# Error codes of failed responses that a later retry may get past.
_RETRYABLE_CODES = frozenset({"rate_limit_exceeded", "server_is_overloaded", "slow_down"})
# Those that say the server failed (a failure without a code too), not the request.
_SERVER_CODES = frozenset({"server_error", "server_is_overloaded"})
MAX_ARGUMENTS_LENGTH = 1_000_000
MAX_EVENTS = 200_000


_Handler = Callable[["ResponseStepTranslator", Any], "list[ModelEvent]"]


@attrs.define
class ResponseStepTranslator:
    """Translate the events of one streamed response; not reusable."""

    output_items: list[dict[str, Any]] = attrs.field(factory=list, init=False)
    completed: bool = attrs.field(default=False, init=False)
    call_ids: list[str] = attrs.field(factory=list, init=False)
    _events: int = attrs.field(default=0, init=False)
    _calls: dict[str, PartialCall] = attrs.field(factory=dict, init=False)
    _messages_done: set[str] = attrs.field(factory=set, init=False)
    _text: dict[str, list[str]] = attrs.field(factory=dict, init=False)

    def feed(self, event: Any) -> list[ModelEvent]:
        """The model events ``event`` completes; raises ``UpstreamError`` for a failure."""
        self._events += 1
        if self._events > MAX_EVENTS:
            raise UpstreamError(f"the response streamed more than {MAX_EVENTS} events")
        kind = _get(event, "type")
        if not isinstance(kind, str):
            raise MalformedEventError("an event without a type")
        handler = self._HANDLERS.get(kind)
        if handler is None:
            return []
        try:
            return handler(self, event)
        except SHAPE_ERRORS as error:  # a field of a type no handler expects
            raise MalformedEventError(f"a {kind} event of the wrong shape ({error})") from None

    def _delta(self, event: Any) -> list[ModelEvent]:
        delta = _text(event, "delta")
        item_id = _get(event, "item_id")
        if isinstance(item_id, str):
            self._text.setdefault(item_id, []).append(delta)
        return [ModelTextDelta(delta)] if delta else []

    def _item_added(self, event: Any) -> list[ModelEvent]:
        item = _get(event, "item")
        if _get(item, "type") == "function_call":
            partial = self._partial(_text(item, "id", "fc_unknown"))
            partial.call_id = _text(item, "call_id", "") or partial.call_id
            partial.name = _text(item, "name", "") or partial.name
        return []

    def _arguments_delta(self, event: Any) -> list[ModelEvent]:
        partial = self._partial(_text(event, "item_id"))
        piece = _text(event, "delta")
        partial.add(piece)
        if partial.length > MAX_ARGUMENTS_LENGTH:
            raise UpstreamError("a function call's arguments are too long")
        return []

    def _arguments_done(self, event: Any) -> list[ModelEvent]:
        partial = self._partial(_text(event, "item_id"))
        partial.whole = _text(event, "arguments")
        partial.name = _text(event, "name", "") or partial.name
        return []

    def _item_done(self, event: Any) -> list[ModelEvent]:
        return self._item(_get(event, "item"))

    def _completed(self, event: Any) -> list[ModelEvent]:
        response = _get(event, "response")
        if not isinstance(response, Mapping):
            raise MalformedEventError(f"a {_get(event, 'type')} event without its response")
        events: list[ModelEvent] = []
        for item in _items(response, "output"):
            events.extend(self._item(item))
        events.extend(self._leftovers())
        self.completed = True
        usage = _get(response, "usage")
        if usage is not None:
            tokens = Usage(_int(usage, "input_tokens"), _int(usage, "output_tokens"))
            events.append(ModelUsage(tokens))
        return events

    def _failed(self, event: Any) -> list[ModelEvent]:
        error = _get(_get(event, "response"), "error")
        raise _failure(_get(error, "code"), _get(error, "message"))

    def _error(self, event: Any) -> list[ModelEvent]:
        raise _failure(_get(event, "code"), _get(event, "message"))

    def _item(self, item: Any) -> list[ModelEvent]:
        kind = _get(item, "type")
        if kind == "message":
            return self._message(item)
        if kind == "function_call":
            return self._function_call(item)
        return []

    def _message(self, item: Any) -> list[ModelEvent]:
        item_id = _text(item, "id", "")
        if item_id and item_id in self._messages_done:
            return []
        self._messages_done.add(item_id)
        texts, refusals = [], []
        for part in _items(item, "content"):
            part_kind = _get(part, "type")
            if part_kind == "output_text":
                texts.append(_text(part, "text"))
            elif part_kind == "refusal":
                refusals.append(_text(part, "refusal"))
        self.output_items.append(
            {
                "type": "message",
                "role": "assistant",
                "content": [{"type": "output_text", "text": t} for t in texts]
                + [{"type": "refusal", "refusal": r} for r in refusals],
            }
        )
        if texts:
            return [ModelMessage("".join(texts))]
        if refusals:
            return [ModelMessage("".join(refusals), refusal=True)]
        return []

    def _function_call(self, item: Any) -> list[ModelEvent]:
        call_id = _text(item, "call_id")
        if call_id in self.call_ids:
            return []
        partial = self._calls.get(_text(item, "id", ""), PartialCall())
        arguments = _get(item, "arguments")
        if arguments is not None and not isinstance(arguments, str):
            raise MalformedEventError("a function call whose arguments are no string")
        return [self._emit_call(call_id, _text(item, "name"), arguments or partial.arguments())]

    def _emit_call(self, call_id: str, wire_name: str, arguments: str) -> ModelEvent:
        self.call_ids.append(call_id)
        self.output_items.append(
            {"type": "function_call", "call_id": call_id, "name": wire_name, "arguments": arguments}
        )
        return ModelToolCall(ToolCall(call_id, from_wire_name(wire_name), arguments))

    def _leftovers(self) -> list[ModelEvent]:
        # Items announced and streamed but never finished nor listed in the output.
        events: list[ModelEvent] = [
            self._emit_call(partial.call_id, partial.name, partial.arguments())
            for partial in list(self._calls.values())
            if partial.call_id and partial.name and partial.call_id not in self.call_ids
        ]
        for item_id, pieces in self._text.items():
            if item_id not in self._messages_done and pieces:
                self._messages_done.add(item_id)
                text = "".join(pieces)
                self.output_items.append(
                    {
                        "type": "message",
                        "role": "assistant",
                        "content": [{"type": "output_text", "text": text}],
                    }
                )
                events.append(ModelMessage(text))
        return events

    def _partial(self, item_id: str) -> PartialCall:
        if item_id not in self._calls and len(self._calls) >= MAX_EVENTS:
            raise UpstreamError("the response announced too many function calls")
        return self._calls.setdefault(item_id, PartialCall())

    _HANDLERS: ClassVar[Mapping[str, _Handler]] = {
        "response.output_text.delta": _delta,
        "response.refusal.delta": _delta,
        "response.output_item.added": _item_added,
        "response.function_call_arguments.delta": _arguments_delta,
        "response.function_call_arguments.done": _arguments_done,
        "response.output_item.done": _item_done,
        "response.completed": _completed,
        # An incomplete response (output token limit, content filter) ends the step
        # with what came; the model's partial answer is better than none.
        "response.incomplete": _completed,
        "response.failed": _failed,
        "error": _error,
    }


def _get(source: Any, name: str) -> Any:
    """``source[name]`` for the plain JSON events arrive in (an object's attribute else)."""
    if isinstance(source, dict):  # the usual case, and the fast check
        return source.get(name)
    if isinstance(source, Mapping):
        return source.get(name)
    return getattr(source, name, None)


def _text(source: Any, name: str, default: str | None = None) -> str:
    value = _get(source, name)
    if isinstance(value, str):
        return value
    if default is not None:
        return default
    raise MalformedEventError(f"an event or item without a string {name!r}")


def _items(source: Any, name: str) -> list[Any] | tuple[Any, ...]:
    """``source``'s list ``name`` (empty when absent); raises for anything but a list."""
    value = _get(source, name)
    if value is None:
        return ()
    if not isinstance(value, list):
        raise MalformedEventError(f"an event or item whose {name!r} is no list")
    return value


def _int(source: Any, name: str) -> int:
    value = _get(source, name)
    return value if isinstance(value, int) else 0


def _failure(code: object, message: object) -> UpstreamError:
    code = code if isinstance(code, str) else None  # a code of another type says nothing
    detail = message if isinstance(message, str) and message else "no reason given"
    text = f"the language model failed ({code or 'error'}): {redact(detail)}"
    fault = not code or code in _SERVER_CODES
    if code in _RETRYABLE_CODES:
        return UpstreamUnavailableError(text, fault=fault)
    return UpstreamError(text, fault=fault)
