"""Scripted model turns of the Responses API and the exact SSE events they stream.

``text("Hello there", deltas=["Hel", "lo there"])``, ``calls(call("a__b", '{"x": 1}',
pieces=['{"x"', ': 1}']))``, ``refusal("I can't help with that")``; faults are
fields: ``fail`` (``response.failed``, its code ``fail_code``), ``error`` (an ``error`` event),
``drop_after`` (cut the connection after that many events), ``end_after`` (end
the stream cleanly, unfinished, after that many events), ``malformed_after``
(a broken event there), ``pause`` (seconds between events). ``incomplete`` (a
reason such as ``max_output_tokens``) ends the response ``response.incomplete``.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import attrs

from fakeopenai.server import Drop, Pause, Raw, SSEItem, SSEReply
from fakeopenai.wire import event

MALFORMED = b"event: response.output_text.delta\ndata: {this is not json\n\n"


@attrs.frozen
class FunctionCall:
    name: str
    arguments: str = "{}"
    pieces: tuple[str, ...] | None = None  # argument deltas; default: three pieces
    call_id: str = attrs.field(factory=lambda: f"call_{uuid.uuid4().hex[:24]}")

    def argument_pieces(self) -> tuple[str, ...]:
        if self.pieces is not None:
            return self.pieces
        third = max(1, len(self.arguments) // 3)
        return tuple(self.arguments[i : i + third] for i in range(0, len(self.arguments), third))


@attrs.frozen
class Turn:
    text: str | None = None
    deltas: tuple[str, ...] | None = None
    calls: tuple[FunctionCall, ...] = ()
    refusal: str | None = None
    input_tokens: int = 12
    output_tokens: int = 7
    fail: str | None = None
    fail_code: str = "server_error"
    incomplete: str | None = None
    error: str | None = None
    drop_after: int | None = None
    end_after: int | None = None
    malformed_after: int | None = None
    pause: float = 0.0

    @property
    def succeeds(self) -> bool:
        return (
            self.fail is None
            and self.error is None
            and self.drop_after is None
            and self.end_after is None
            and (self.malformed_after is None)
        )


def text(content: str, *, deltas: list[str] | None = None, **faults: Any) -> Turn:
    return Turn(text=content, deltas=tuple(deltas) if deltas is not None else None, **faults)


def call(
    name: str, arguments: str = "{}", *, pieces: list[str] | None = None, call_id: str | None = None
) -> FunctionCall:
    extra = {"call_id": call_id} if call_id else {}
    return FunctionCall(name, arguments, tuple(pieces) if pieces is not None else None, **extra)


def calls(*function_calls: FunctionCall, text: str | None = None, **faults: Any) -> Turn:
    return Turn(text=text, calls=function_calls, **faults)


def refusal(content: str, **faults: Any) -> Turn:
    return Turn(refusal=content, **faults)


def build_stream(
    turn: Turn, body: dict[str, Any], response_id: str
) -> tuple[SSEReply, list[dict[str, Any]]]:
    """The SSE reply for ``turn`` and the output items a completed response stores."""
    builder = _Builder(body, response_id)
    builder.start()
    if turn.text is not None or turn.refusal is not None:
        builder.message(turn)
    for function_call in turn.calls:
        builder.function_call(function_call)
    builder.finish(turn)
    items: list[SSEItem] = list(builder.events)
    if turn.malformed_after is not None:
        items = [*items[: turn.malformed_after], Raw(MALFORMED), *items[turn.malformed_after :]]
    if turn.end_after is not None:
        items = items[: turn.end_after]
    if turn.drop_after is not None:
        items = [*items[: turn.drop_after], Drop()]
    if turn.pause:
        items = [x for item in items for x in (Pause(turn.pause), item)]
    return SSEReply(tuple(items)), builder.output


@attrs.define
class _Builder:
    body: dict[str, Any]
    response_id: str
    events: list[Any] = attrs.field(factory=list)
    output: list[dict[str, Any]] = attrs.field(factory=list)

    def emit(self, kind: str, **fields: Any) -> None:
        self.events.append(event(kind, sequence_number=len(self.events), **fields))

    def response(self, status: str, **fields: Any) -> dict[str, Any]:
        conversation = self.body.get("conversation")
        if isinstance(conversation, str):
            conversation = {"id": conversation}
        return {
            "id": self.response_id,
            "object": "response",
            "created_at": int(time.time()),
            "status": status,
            "model": self.body.get("model", ""),
            "instructions": self.body.get("instructions"),
            "temperature": self.body.get("temperature"),
            "tools": self.body.get("tools", []),
            "tool_choice": "auto",
            "parallel_tool_calls": True,
            "conversation": conversation,
            "output": list(self.output) if status != "in_progress" else [],
            "error": None,
            "incomplete_details": None,
            "metadata": {},
            "usage": None,
            **fields,
        }

    def start(self) -> None:
        self.emit("response.created", response=self.response("in_progress"))
        self.emit("response.in_progress", response=self.response("in_progress"))

    def message(self, turn: Turn) -> None:
        index, item_id = len(self.output), f"msg_{uuid.uuid4().hex}"
        is_refusal = turn.refusal is not None
        full = turn.refusal if is_refusal else turn.text
        assert full is not None
        pieces = turn.deltas if turn.deltas is not None else _split(full)
        empty = {"type": "refusal", "refusal": ""} if is_refusal else _text_part("")
        done = {"type": "refusal", "refusal": full} if is_refusal else _text_part(full)
        item = {"id": item_id, "type": "message", "role": "assistant", "status": "in_progress"}
        where = {"item_id": item_id, "output_index": index, "content_index": 0}
        self.emit("response.output_item.added", output_index=index, item={**item, "content": []})
        self.emit("response.content_part.added", **where, part=empty)
        for piece in pieces:
            if is_refusal:
                self.emit("response.refusal.delta", **where, delta=piece)
            else:
                self.emit("response.output_text.delta", **where, delta=piece, logprobs=[])
        if is_refusal:
            self.emit("response.refusal.done", **where, refusal=full)
        else:
            self.emit("response.output_text.done", **where, text=full, logprobs=[])
        self.emit("response.content_part.done", **where, part=done)
        finished = {**item, "status": "completed", "content": [done]}
        self.emit("response.output_item.done", output_index=index, item=finished)
        self.output.append(finished)

    def function_call(self, function_call: FunctionCall) -> None:
        index, item_id = len(self.output), f"fc_{uuid.uuid4().hex}"
        item = {
            "id": item_id,
            "type": "function_call",
            "call_id": function_call.call_id,
            "name": function_call.name,
            "arguments": "",
            "status": "in_progress",
        }
        self.emit("response.output_item.added", output_index=index, item=item)
        for piece in function_call.argument_pieces():
            self.emit(
                "response.function_call_arguments.delta",
                item_id=item_id,
                output_index=index,
                delta=piece,
            )
        self.emit(
            "response.function_call_arguments.done",
            item_id=item_id,
            output_index=index,
            arguments=function_call.arguments,
        )
        finished = {**item, "arguments": function_call.arguments, "status": "completed"}
        self.emit("response.output_item.done", output_index=index, item=finished)
        self.output.append(finished)

    def finish(self, turn: Turn) -> None:
        if turn.fail is not None:
            error = {"code": turn.fail_code, "message": turn.fail}
            self.emit("response.failed", response=self.response("failed", error=error))
        elif turn.error is not None:
            self.emit("error", code="server_error", message=turn.error, param=None)
        else:
            usage = {
                "input_tokens": turn.input_tokens,
                "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
                "output_tokens": turn.output_tokens,
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": turn.input_tokens + turn.output_tokens,
            }
            if turn.incomplete is not None:
                details = {"reason": turn.incomplete}
                response = self.response("incomplete", usage=usage, incomplete_details=details)
                self.emit("response.incomplete", response=response)
            else:
                self.emit("response.completed", response=self.response("completed", usage=usage))


def _text_part(content: str) -> dict[str, Any]:
    return {"type": "output_text", "text": content, "annotations": [], "logprobs": []}


def _split(content: str) -> tuple[str, ...]:
    words = content.split(" ")
    return (*(w + " " for w in words[:-1]), words[-1]) if content else ()
