"""Run events as JSON-compatible mappings, for the run-event log, and back.

The log keeps a run's events so that any instance can replay them; this is
the one form they are stored in. It is the domain's own shape (field names as
in :mod:`assistant_service.domain.events`), not the HTTP wire form, which the
edge builds from the decoded events. Plain Python: the application layer
uses no serialization library.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from assistant_service.domain.errors import AssistantServiceError, restore_error
from assistant_service.domain.events import (
    MessageCompleted,
    RunCancelled,
    RunCompleted,
    RunEvent,
    RunFailed,
    RunRequiresApproval,
    RunStarted,
    TextDelta,
    ToolApprovalRequired,
    ToolCallCompleted,
    ToolCallStarted,
)
from assistant_service.domain.models import Message, Role, RunResult, RunStatus, Usage
from assistant_service.domain.tools import OutcomeStatus, ToolCall, ToolOutcome

Json = dict[str, Any]


def encode_event(event: RunEvent) -> Json:
    """``event`` as a mapping with its ``type`` and ``seq``."""
    body: Json = {"type": event.type, "seq": event.seq, "run_id": event.run_id}
    if isinstance(event, RunStarted):
        body |= {
            "conversation_id": event.conversation_id,
            "assistant_id": event.assistant_id,
            "resumes": event.resumes,
        }
    elif isinstance(event, TextDelta):
        body["text"] = event.text
    elif isinstance(event, MessageCompleted):
        body["message"] = _message(event.message)
    elif isinstance(event, (ToolCallStarted, ToolApprovalRequired)):
        body["call"] = _call(event.call)
    elif isinstance(event, ToolCallCompleted):
        body["outcome"] = _outcome(event.outcome)
    else:
        body["result"] = encode_result(event.result)
        if isinstance(event, RunFailed):
            body["error"] = _error(event.error)
        if isinstance(event, RunRequiresApproval):
            body["stopped_round"] = [_call(c) for c in event.stopped_round]
    return body


def decode_event(data: Mapping[str, Any]) -> RunEvent:  # noqa: C901, PLR0911 -- one branch per event
    """The event ``encode_event`` made ``data`` from; ``KeyError``/``ValueError`` if it is not one."""
    kind, seq, run_id = data["type"], int(data["seq"]), str(data["run_id"])
    if kind == RunStarted.type:
        return RunStarted(
            run_id, data["conversation_id"], data["assistant_id"], data.get("resumes"), seq=seq
        )
    if kind == TextDelta.type:
        return TextDelta(run_id, data["text"], seq=seq)
    if kind == MessageCompleted.type:
        return MessageCompleted(run_id, _to_message(data["message"]), seq=seq)
    if kind == ToolCallStarted.type:
        return ToolCallStarted(run_id, _to_call(data["call"]), seq=seq)
    if kind == ToolApprovalRequired.type:
        return ToolApprovalRequired(run_id, _to_call(data["call"]), seq=seq)
    if kind == ToolCallCompleted.type:
        return ToolCallCompleted(run_id, _to_outcome(data["outcome"]), seq=seq)
    result = decode_result(data["result"])
    if kind == RunCompleted.type:
        return RunCompleted(run_id, result, seq=seq)
    if kind == RunCancelled.type:
        return RunCancelled(run_id, result, seq=seq)
    if kind == RunRequiresApproval.type:
        stopped = tuple(_to_call(c) for c in data["stopped_round"])
        return RunRequiresApproval(run_id, result, stopped, seq=seq)
    if kind == RunFailed.type:
        return RunFailed(run_id, _to_error(data["error"]), result, seq=seq)
    raise ValueError(f"unknown run event type {kind!r}")


def encode_result(result: RunResult) -> Json:
    return {
        "run_id": result.run_id,
        "conversation_id": result.conversation_id,
        "status": result.status.value,
        "messages": [_message(m) for m in result.messages],
        "tool_outcomes": [_outcome(o) for o in result.tool_outcomes],
        "usage": {
            "input_tokens": result.usage.input_tokens,
            "output_tokens": result.usage.output_tokens,
        },
        "tool_rounds": result.tool_rounds,
        "pending": [_call(c) for c in result.pending],
    }


def decode_result(data: Mapping[str, Any]) -> RunResult:
    usage = data["usage"]
    return RunResult(
        run_id=data["run_id"],
        conversation_id=data["conversation_id"],
        status=RunStatus(data["status"]),
        messages=tuple(_to_message(m) for m in data["messages"]),
        tool_outcomes=tuple(_to_outcome(o) for o in data["tool_outcomes"]),
        usage=Usage(int(usage["input_tokens"]), int(usage["output_tokens"])),
        tool_rounds=int(data["tool_rounds"]),
        pending=tuple(_to_call(c) for c in data["pending"]),
    )


def _message(message: Message) -> Json:
    return {"role": message.role.value, "text": message.text}


def _to_message(data: Mapping[str, Any]) -> Message:
    return Message(Role(data["role"]), data["text"])


def _call(call: ToolCall) -> Json:
    return {"id": call.id, "name": call.name, "arguments": call.arguments}


def _to_call(data: Mapping[str, Any]) -> ToolCall:
    return ToolCall(data["id"], data["name"], data["arguments"])


def _outcome(outcome: ToolOutcome) -> Json:
    return {
        "call": _call(outcome.call),
        "status": outcome.status.value,
        "output": outcome.output,
        "duration": outcome.duration,
    }


def _to_outcome(data: Mapping[str, Any]) -> ToolOutcome:
    return ToolOutcome(
        _to_call(data["call"]), OutcomeStatus(data["status"]), data["output"], data["duration"]
    )


def _error(error: AssistantServiceError) -> Json:
    return {
        "code": error.code,
        "message": error.message,
        "retry_after": getattr(error, "retry_after", None),
    }


def _to_error(data: Mapping[str, Any]) -> AssistantServiceError:
    return restore_error(data["code"], data["message"], data.get("retry_after"))
