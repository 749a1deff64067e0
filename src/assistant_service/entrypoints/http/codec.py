"""The edge's one cattrs converter: requests in, run events and results out.

The domain calls a conversation ``conversation_id``; the HTTP API keeps the
original name ``thread_id``. The renaming happens here and in ``errors``, nowhere else.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal, TypeVar

import attrs
import cattrs

from assistant_service.adapters.json_text import dumps_bytes as to_json_bytes
from assistant_service.adapters.json_text import dumps_text
from assistant_service.application.history import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from assistant_service.domain.errors import (
    AssistantServiceError,
    InvalidInputError,
    StateStoreUnavailableError,
    UpstreamUnavailableError,
)
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
from assistant_service.domain.models import HistoryPage, RunResult
from assistant_service.domain.runs import ApprovalDecision, RunRecord
from assistant_service.domain.secrets import mask_secrets
from assistant_service.domain.tools import ToolCall, ToolOutcome
from assistant_service.entrypoints.http.refusals import TooManyRequestsError

T = TypeVar("T")

# Field names of the domain -> of the HTTP API.
API_FIELD_NAMES = {"conversation_id": "thread_id"}


class MalformedRequestError(AssistantServiceError):
    """The body or frame is not JSON, or not a JSON object (HTTP 400)."""

    code = "malformed_request"


OnDisconnect = Literal["cancel", "continue"]


@attrs.frozen
class ChatRequest:
    """``POST /chat`` body and ``/stream`` message frame.

    ``on_disconnect``: what happens to the run when the client goes away
    (``continue``: it runs on, and can be resumed). ``background``: answer 202
    at once and run in the background (``POST /chat`` only). ``type`` and
    ``id`` are the WebSocket frame's kind and the client's id for it.
    """

    thread_id: str
    message: str
    on_disconnect: OnDisconnect = "cancel"
    background: bool = False
    type: Literal["message"] = "message"
    id: str | None = None


@attrs.frozen
class Decision:
    call_id: str
    approve: bool
    reason: str | None = None


@attrs.frozen
class ApprovalsRequest:
    """``POST .../approvals`` body, and the ``approvals`` frame (with ``run_id``)."""

    decisions: list[Decision]
    run_id: str | None = None
    thread_id: str | None = None
    type: Literal["approvals"] = "approvals"
    id: str | None = None

    def domain_decisions(self) -> list[ApprovalDecision]:
        return [ApprovalDecision(d.call_id, d.approve, d.reason) for d in self.decisions]


@attrs.frozen
class CancelFrame:
    run_id: str
    thread_id: str | None = None
    type: Literal["cancel"] = "cancel"
    id: str | None = None


@attrs.frozen
class ResumeFrame:
    run_id: str
    after: int = 0
    thread_id: str | None = None
    type: Literal["resume"] = "resume"
    id: str | None = None


Frame = ChatRequest | ApprovalsRequest | CancelFrame | ResumeFrame
_FRAMES: dict[str, type[Any]] = {
    "message": ChatRequest,
    "approvals": ApprovalsRequest,
    "cancel": CancelFrame,
    "resume": ResumeFrame,
}


@attrs.frozen
class HistoryQuery:
    """The query of ``GET /threads/<thread_id>/messages``."""

    limit: int = DEFAULT_PAGE_SIZE
    cursor: str | None = None


_DIGITS = re.compile(r"[0-9]{1,9}")


def _strict_str(value: Any, _type: Any) -> str:
    # cattrs would turn 42 into "42"; a client sending a number made a mistake.
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {_json_type(value)}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("expected valid Unicode text (a lone surrogate was found)") from None
    return value


def _strict_bool(value: Any, _type: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"expected true or false, got {_json_type(value)}")
    return value


def _strict_int(value: Any, _type: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected an integer, got {_json_type(value)}")
    return value


def _json_type(value: Any) -> str:
    names = {
        bool: "a boolean",
        int: "a number",
        float: "a number",
        list: "an array",
        dict: "an object",
    }
    return "null" if value is None else names.get(type(value), type(value).__name__)


def _tool_summary(outcome: ToolOutcome) -> dict[str, Any]:
    return {
        "id": outcome.call.id,
        "name": outcome.call.name,
        "status": outcome.status.value,
        "duration_ms": round(outcome.duration * 1000, 1),
    }


def _call(call: ToolCall) -> dict[str, Any]:
    return {"id": call.id, "name": call.name, "arguments": call.arguments}


def result_body(result: RunResult) -> dict[str, Any]:
    """The ``POST /chat`` answer: status, texts, tool summaries, usage; ``pending`` calls."""
    body = {
        "thread_id": result.conversation_id,
        "run_id": result.run_id,
        "status": result.status.value,
        "responses": result.texts,
        "tool_calls": [_tool_summary(outcome) for outcome in result.tool_outcomes],
        "usage": {
            "input_tokens": result.usage.input_tokens,
            "output_tokens": result.usage.output_tokens,
        },
    }
    if result.pending:
        body["pending"] = [_call(call) for call in result.pending]
    return body


def run_body(record: RunRecord) -> dict[str, Any]:
    """``GET /threads/<thread_id>/runs/<run_id>``: where the run is, and how it ended."""
    body: dict[str, Any] = {
        "run_id": record.run_id,
        "thread_id": record.conversation_id,
        "status": record.status.value,
    }
    if record.resumes:
        body["resumes"] = record.resumes
    if record.resumed_by:
        # A decision continued it (or a new message denied its calls) in this run.
        body["resumed_by"] = record.resumed_by
    if record.result is not None:
        body["result"] = result_body(record.result)
    if record.error_code is not None:
        body["error"] = {"code": record.error_code, "message": record.error_message}
    return body


def history_body(conversation_id: str, page: HistoryPage) -> dict[str, Any]:
    """The ``GET /threads/<thread_id>/messages`` answer: one page, oldest first."""
    return {
        "thread_id": conversation_id,
        "messages": [{"role": m.role.value, "text": m.text} for m in page.messages],
        "has_more": page.has_more,
        "next_cursor": page.next_cursor,
    }


def parse_history_query(args: Mapping[str, Sequence[str]]) -> HistoryQuery:
    """``limit`` and ``cursor`` from a query string (each name to all its values).

    Raises ``InvalidInputError`` naming ``limit`` when it is not a whole number
    in decimal digits, and either field when it is given more than once. The
    range of ``limit`` and the cursor itself are checked by the service. Other
    parameters are ignored.
    """
    limits, cursors = args.get("limit", ()), args.get("cursor", ())
    fields = {
        name: "given more than once"
        for name, values in (("limit", limits), ("cursor", cursors))
        if len(values) > 1
    }
    if len(limits) == 1 and not _DIGITS.fullmatch(limits[0]):
        fields["limit"] = f"must be an integer from 1 to {MAX_PAGE_SIZE}"
    if fields:
        raise InvalidInputError("invalid query parameters", fields)
    return HistoryQuery(
        limit=int(limits[0]) if limits else DEFAULT_PAGE_SIZE,
        cursor=cursors[0] if cursors else None,
    )


STATE_STORE_UNAVAILABLE = "the service's state store cannot be reached; retry shortly"


def error_payload(error: AssistantServiceError) -> dict[str, Any]:
    """``code`` and ``message`` of an error; ``fields`` and ``retry_after`` when known.

    A state store's failure keeps its details (host, port, what failed) for the
    log: clients read only that it is unavailable.
    """
    message = error.message
    if isinstance(error, StateStoreUnavailableError):
        message = STATE_STORE_UNAVAILABLE
    payload: dict[str, Any] = {"code": error.code, "message": message}
    if isinstance(error, InvalidInputError) and error.fields:
        payload["fields"] = {API_FIELD_NAMES.get(k, k): v for k, v in error.fields.items()}
    if isinstance(error, UpstreamUnavailableError) and error.retry_after is not None:
        payload["retry_after"] = error.retry_after
    if isinstance(error, TooManyRequestsError):
        payload["retry_after"] = error.retry_after
    return payload


def _converter() -> cattrs.Converter:
    converter = cattrs.Converter(detailed_validation=True, forbid_extra_keys=True)
    converter.register_structure_hook(str, _strict_str)
    converter.register_structure_hook(bool, _strict_bool)
    converter.register_structure_hook(int, _strict_int)
    unstructure = converter.register_unstructure_hook
    unstructure(
        RunStarted,
        lambda e: {
            "run_id": e.run_id,
            "thread_id": e.conversation_id,
            "assistant_id": e.assistant_id,
            **({"resumes": e.resumes} if e.resumes else {}),
        },
    )
    unstructure(TextDelta, lambda e: {"run_id": e.run_id, "text": e.text})
    unstructure(
        MessageCompleted,
        lambda e: {"run_id": e.run_id, "role": e.message.role.value, "text": e.message.text},
    )
    unstructure(
        ToolCallStarted,
        lambda e: {
            "run_id": e.run_id,
            "id": e.call.id,
            "name": e.call.name,
            "arguments": e.call.arguments,
        },
    )
    unstructure(
        ToolCallCompleted,
        lambda e: {"run_id": e.run_id, **_tool_summary(e.outcome), "output": e.outcome.output},
    )
    unstructure(ToolApprovalRequired, lambda e: {"run_id": e.run_id, **_call(e.call)})
    unstructure(RunCompleted, lambda e: result_body(e.result))
    unstructure(RunCancelled, lambda e: result_body(e.result))
    unstructure(RunRequiresApproval, lambda e: result_body(e.result))
    unstructure(RunFailed, lambda e: {"run_id": e.run_id, **error_payload(e.error)})
    return converter


CONVERTER = _converter()


def event_payload(event: RunEvent, correlation_id: str) -> dict[str, Any]:
    """One event as the client sees it; ``run.failed`` becomes an ``error`` event."""
    kind = "error" if isinstance(event, RunFailed) else event.type
    body: dict[str, Any] = CONVERTER.unstructure(event, unstructure_as=type(event))
    return {"type": kind, **body, "seq": event.seq, "correlation_id": correlation_id}


def error_event(
    error: AssistantServiceError, correlation_id: str, frame_id: str | None = None
) -> dict[str, Any]:
    """An ``error`` event for a failure outside a run (a bad frame, a refused run).

    It has no ``run_id``; ``frame_id`` echoes the id of the frame it answers.
    """
    payload = {"type": "error", **error_payload(error), "correlation_id": correlation_id}
    if frame_id is not None:
        payload["frame_id"] = frame_id
    return payload


def run_error_event(
    error: AssistantServiceError, correlation_id: str, run_id: str | None
) -> dict[str, Any]:
    """An ``error`` event that ends a run from outside it (the server shutting down).

    It carries the ``run_id`` when the run had started, but no ``seq``: it is
    not one of the run's recorded events.
    """
    payload = error_event(error, correlation_id)
    if run_id is not None:
        payload = {"type": "error", "run_id": run_id, **payload}
    return payload


def internal_error_event(correlation_id: str) -> dict[str, Any]:
    """The ``error`` event for a bug: it says nothing of the exception (the log has it)."""
    return {
        "type": "error",
        "code": "internal_error",
        "message": "the server could not finish the run",
        "correlation_id": correlation_id,
    }


def dumps(payload: Any) -> str:
    """Compact JSON (UTF-8), with every held secret value and key-shaped text masked.

    Every body, SSE and WebSocket event the edge sends is written here (or by
    :func:`dumps_bytes`), so an upstream that echoes a secret (in an error, an
    event, a message) never gets it to a client.
    """
    return dumps_text(masked(payload))


def dumps_bytes(payload: Any) -> bytes:
    """:func:`dumps`, encoded: for bodies and event streams, which are bytes."""
    return to_json_bytes(masked(payload))


def masked(payload: Any) -> Any:
    """``payload`` with :func:`mask_secrets` applied to every string in it (keys aside)."""
    if isinstance(payload, str):
        return mask_secrets(payload)
    if isinstance(payload, dict):
        return {key: masked(value) for key, value in payload.items()}
    if isinstance(payload, (list, tuple)):
        return [masked(item) for item in payload]
    return payload


def parse_chat_request(raw: bytes | str) -> ChatRequest:
    """Decode and check a chat request.

    Raises :class:`MalformedRequestError` for text that is not a JSON object
    (or that names a key twice, at any depth: which value counts is ambiguous) and
    ``InvalidInputError`` (its ``fields`` name each bad field) for bad fields.
    """
    return structure_body(parse_json_object(raw), ChatRequest)


def parse_approvals(raw: bytes | str) -> ApprovalsRequest:
    """Decode and check an approvals body; raises as :func:`parse_chat_request` does."""
    return structure_body(parse_json_object(raw), ApprovalsRequest)


def parse_frame(raw: str) -> Frame:
    """A WebSocket frame, by its ``type`` (default ``message``); raises as the bodies do.

    ``InvalidInputError`` names ``type`` for an unknown kind.
    """
    data = parse_json_object(raw)
    kind = data.get("type", "message")
    frame_type = _FRAMES.get(kind) if isinstance(kind, str) else None
    if frame_type is None:
        raise InvalidInputError(
            "unknown frame type", {"type": "one of " + ", ".join(sorted(_FRAMES))}
        )
    frame: Frame = structure_body(data, frame_type)
    return frame


def frame_id_of(raw: str | bytes | None) -> str | None:
    """The client's ``id`` of a frame, if the frame is a JSON object with a string id."""
    try:
        data = json.loads(raw) if isinstance(raw, str) else None
    except (ValueError, RecursionError):
        return None
    value = data.get("id") if isinstance(data, dict) else None
    return value[:128] if isinstance(value, str) else None


def parse_json_object(raw: bytes | str) -> dict[str, Any]:
    """A JSON object from a body or frame; :class:`MalformedRequestError` for anything else."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        data = json.loads(text, object_pairs_hook=_unique_keys)
    except _DuplicateKeyError as error:
        raise MalformedRequestError(f"the body repeats the key {error.args[0]!r}") from None
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise MalformedRequestError("the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise MalformedRequestError(f"expected a JSON object, got {_json_type(data)}")
    return data


def structure_body(data: dict[str, Any], kind: type[T]) -> T:
    """``data`` as ``kind``; ``InvalidInputError`` naming each bad field."""
    try:
        return CONVERTER.structure(data, kind)
    except cattrs.ClassValidationError as error:
        raise InvalidInputError("invalid request fields", _field_errors(error)) from None


class _DuplicateKeyError(Exception):
    """A JSON object names a key twice (which value is meant is ambiguous)."""


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for key, value in pairs:
        if key in data:
            raise _DuplicateKeyError(key[:64])
        data[key] = value
    return data


def _field_errors(error: cattrs.ClassValidationError) -> dict[str, str]:
    fields: dict[str, str] = {}
    with_notes, without_notes = error.group_exceptions()
    for exception, note in with_notes:
        if isinstance(exception, KeyError):
            fields[str(note.name)] = "required"
        else:
            fields[str(note.name)] = str(exception)
    for exception in without_notes:
        if isinstance(exception, cattrs.ForbiddenExtraKeysError):
            fields.update(dict.fromkeys(sorted(exception.extra_fields), "unknown field"))
        else:  # pragma: no cover -- cattrs groups only the two kinds above for a flat class
            fields["$"] = str(exception)
    return fields
