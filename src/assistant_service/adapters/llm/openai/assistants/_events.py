"""What one Assistants-API stream event means for a model step."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import attrs

from assistant_service.adapters.llm.openai._calls import MalformedEventError
from assistant_service.adapters.llm.openai._replies import SHAPE_ERRORS, field
from assistant_service.adapters.llm.openai._tools import tool_call
from assistant_service.domain.errors import UpstreamError, UpstreamUnavailableError
from assistant_service.domain.models import Usage
from assistant_service.domain.steps import (
    ModelEvent,
    ModelMessage,
    ModelTextDelta,
    ModelToolCall,
    ModelUsage,
)

# A run in one of these holds the thread: no message can be added until it ends.
ACTIVE_STATUSES = frozenset({"queued", "in_progress", "requires_action", "cancelling"})
_RUN_STARTED = frozenset({"thread.run.created", "thread.run.queued", "thread.run.in_progress"})
_RUN_FAILURES = {
    "thread.run.failed": "failed",
    "thread.run.expired": "expired before it finished",
    "thread.run.cancelled": "was cancelled",
    "thread.run.incomplete": "ended incomplete",
}


@attrs.frozen
class RunUpdate:
    """The model events one stream event carries, and what it says about the run.

    ``ended`` means the step is over: the run completed, failed, or waits for
    tool outputs (``awaiting_outputs``). ``error`` ends the step with that error:
    with ``ended`` the run is over too; without (an error event), it may still
    be active on the server.
    """

    events: tuple[ModelEvent, ...] = ()
    run_id: str | None = None
    awaiting_outputs: bool = False
    ended: bool = False
    error: UpstreamError | None = None


def read_event(event: Any) -> RunUpdate:
    """Translate one ``AssistantStreamEvent``; events we do not use give an empty update.

    A run that failed, expired, was cancelled or ended incomplete, and an error
    event, give an update with ``error`` (``UpstreamUnavailableError`` for a run
    that failed on a rate limit). Raises :class:`MalformedEventError` for an
    event whose data does not fit its name: a run without a string id, a tool
    call without a string id, name or arguments.
    """
    try:
        return _read(str(event.event), event.data)
    except SHAPE_ERRORS as error:
        raise MalformedEventError(f"{type(error).__name__}: {error}") from None


def _read(name: str, data: Any) -> RunUpdate:  # noqa: PLR0911 -- one return per event kind
    if name in _RUN_STARTED:
        return RunUpdate(run_id=_text(data, "id"))
    if name == "thread.message.delta":
        pieces = _texts(data.delta.content or (), "text")
        return RunUpdate(events=tuple(ModelTextDelta(piece) for piece in pieces if piece))
    if name == "thread.message.completed":
        return RunUpdate(events=_message(data.content or ()))
    if name == "thread.run.requires_action":
        calls = data.required_action.submit_tool_outputs.tool_calls
        return RunUpdate(
            events=tuple(
                ModelToolCall(
                    tool_call(
                        _text(c, "id"),
                        _text(c.function, "name"),
                        _text(c.function, "arguments", empty_ok=True) or "{}",
                    )
                )
                for c in calls
            ),
            run_id=_text(data, "id"),
            awaiting_outputs=True,
            ended=True,
        )
    if name == "thread.run.completed":
        usage = data.usage
        counted = (
            Usage()
            if usage is None
            else Usage(int(usage.prompt_tokens), int(usage.completion_tokens))
        )
        return RunUpdate(events=(ModelUsage(counted),), run_id=_text(data, "id"), ended=True)
    if name in _RUN_FAILURES:
        return RunUpdate(
            run_id=_text(data, "id"), ended=True, error=run_error(data, _RUN_FAILURES[name])
        )
    if name == "error":
        return RunUpdate(
            error=UpstreamError(f"the model server reported an error: {data.message}", fault=True)
        )
    return RunUpdate()


def run_error(run: Any, what: str) -> UpstreamError:
    """The error for a run that ended without completing, with the server's own reason."""
    last_error = getattr(run, "last_error", None)
    details = getattr(run, "incomplete_details", None)
    if last_error is not None:
        message = f"the assistant's run {what}: {last_error.code}: {last_error.message}"
        if last_error.code == "rate_limit_exceeded":
            return UpstreamUnavailableError(message)
        return UpstreamError(message, fault=last_error.code == "server_error")
    if details is not None and details.reason:
        return UpstreamError(f"the assistant's run {what}: {details.reason}")
    return UpstreamError(f"the assistant's run {what}")


def _text(source: Any, name: str, *, empty_ok: bool = False) -> str:
    value = field(source, name)
    if isinstance(value, str) and (value or empty_ok):
        return value
    raise MalformedEventError(f"no string {name!r}: got {type(value).__name__}")


def _message(blocks: Iterable[Any]) -> tuple[ModelEvent, ...]:
    blocks = list(blocks)
    text = "".join(_texts(blocks, "text"))
    refusal = "".join(_texts(blocks, "refusal"))
    if refusal:
        return (ModelMessage(refusal, refusal=True),)
    return (ModelMessage(text),) if text else ()


def _texts(blocks: Iterable[Any], kind: str) -> list[str]:
    pieces = []
    for block in blocks:
        if block.type != kind:
            continue  # images and files are not part of a text conversation
        if kind == "refusal":
            pieces.append(str(block.refusal or ""))
        elif block.text is not None:
            pieces.append(str(block.text.value or ""))
    return pieces
