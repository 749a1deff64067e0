"""Chat Completions on the fake OpenAI server, streamed as OpenAI-compatible servers stream them.

``install(server)`` registers ``POST /v1/chat/completions`` (route
``chat.completions.create``) and returns the :class:`ChatScript` tests fill
with :class:`ChatStep`s, one per request.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import attrs

from fakeopenai.server import (
    Drop,
    FakeOpenAIServer,
    Pause,
    Raw,
    RecordedRequest,
    Reply,
    SSEEvent,
    SSEItem,
    SSEReply,
    error_reply,
)


@attrs.frozen
class ChatStep:
    """What the model streams for one request.

    ``calls`` are (id, wire name, arguments); each call's arguments arrive in
    ``argument_pieces`` pieces after a first delta with its id and name
    (``omit_ids`` drops the ids, as some local servers do). Faults: an
    ``error`` chunk, the connection dropped or a non-JSON chunk after ``after``
    chunks, no finish reason at all, or a ``delay`` before the first chunk.
    """

    text: str | None = None
    deltas: tuple[str, ...] | None = None
    calls: tuple[tuple[str, str, str], ...] = ()
    argument_pieces: int = 3
    omit_ids: bool = False
    finish_reason: str | None = None
    omit_finish: bool = False
    usage: tuple[int, int] = (11, 6)
    error: str | None = None
    drop_after: int | None = None
    malformed_after: int | None = None
    delay: float = 0.0

    def pieces(self) -> tuple[str, ...]:
        if self.deltas is not None:
            return self.deltas
        return (self.text,) if self.text else ()


def chat_reply(text: str, *, deltas: tuple[str, ...] | None = None, usage=(11, 6)) -> ChatStep:
    return ChatStep(text=text, deltas=deltas, usage=usage)


def chat_calls(*calls: tuple[str, str, str], text: str | None = None, **faults: Any) -> ChatStep:
    return ChatStep(text=text, calls=calls, **faults)


@attrs.define
class ChatScript:
    """The steps to play, one per request, and the servers' quirks to imitate."""

    steps: deque[ChatStep] = attrs.field(factory=deque)
    reject_stream_options: bool = False
    # Played when no step is queued (benchmarks): a step, or a function of the
    # request body. Else an empty script is a 500.
    default: ChatStep | Callable[[dict[str, Any]], ChatStep] | None = None

    def play(self, *steps: ChatStep) -> None:
        self.steps.extend(steps)


def chunk(choices: list[dict[str, Any]], usage: dict[str, int] | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": "fake-model",
        "system_fingerprint": None,
        "choices": choices,
        "usage": usage,
    }


def delta(fields: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
    return chunk([{"index": 0, "delta": fields, "finish_reason": finish_reason, "logprobs": None}])


def install(server: FakeOpenAIServer, script: ChatScript | None = None) -> ChatScript:
    """Register the Chat Completions route on ``server``; returns the script it plays."""
    script = script or ChatScript()
    lock = threading.Lock()

    def create(request: RecordedRequest) -> Reply:
        body = request.body if isinstance(request.body, dict) else {}
        if script.reject_stream_options and "stream_options" in body:
            return error_reply(400, "Unrecognized request argument supplied: stream_options")
        if body.get("stream") is not True:
            return error_reply(400, "this fake server only streams completions")
        with lock:
            step = script.steps.popleft() if script.steps else script.default
        if callable(step):
            step = step(body)
        if step is None:
            return error_reply(500, "the fake server has no chat step scripted")
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        items, done = step_items(step, include_usage)
        return SSEReply(items, done=done)

    server.route("POST", r"/v1/chat/completions", "chat.completions.create", create)
    return script


def step_items(step: ChatStep, include_usage: bool) -> tuple[tuple[SSEItem, ...], bool]:
    """The SSE items of one streamed completion, faults included, and whether [DONE] follows."""
    chunks = _chunks(step, include_usage)
    if step.error is not None:
        error = {"message": step.error, "type": "server_error", "param": None, "code": None}
        chunks = [*chunks[:2], {"error": error}]
    items: list[SSEItem] = [Pause(step.delay)] if step.delay else []
    cut = step.drop_after if step.drop_after is not None else step.malformed_after
    items.extend(SSEEvent(c) for c in chunks[:cut])
    if step.drop_after is not None:
        return (*items, Drop()), False
    if step.malformed_after is not None:
        return (*items, Raw(b"data: {oops\n\n")), False
    return tuple(items), step.error is None


def _chunks(step: ChatStep, include_usage: bool) -> list[dict[str, Any]]:
    chunks: list[dict[str, Any]] = [delta({"role": "assistant", "content": ""})]
    chunks.extend(delta({"content": piece}) for piece in step.pieces())
    for index, (call_id, name, arguments) in enumerate(step.calls):
        first: dict[str, Any] = {"index": index, "type": "function"}
        first["function"] = {"name": name, "arguments": ""}
        if not step.omit_ids:
            first["id"] = call_id
        chunks.append(delta({"tool_calls": [first]}))
        size = max(1, -(-len(arguments) // step.argument_pieces))
        for start in range(0, len(arguments), size):
            piece = {"index": index, "function": {"arguments": arguments[start : start + size]}}
            chunks.append(delta({"tool_calls": [piece]}))
    if not step.omit_finish:
        reason = step.finish_reason or ("tool_calls" if step.calls else "stop")
        chunks.append(delta({}, finish_reason=reason))
    if include_usage:
        prompt, completion = step.usage
        usage = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }
        chunks.append(chunk([], usage=usage))
    return chunks
