"""The OpenAPI 3.1 document of the HTTP API, written once next to the codec it describes.

:func:`openapi_document` builds it as a plain dict; ``GET /openapi.json``
serves it. The enums (run, tool-call and message statuses) come from the
domain, so a new status shows up here without an edit; the routes are
checked against the app's ``url_map`` by the tests. The WebSocket ``/stream``
has no OpenAPI form: its path is described in words, with the frames and
events as schemas under ``components``.
"""

from __future__ import annotations

from typing import Any

from assistant_service.application.history import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE

# The service's own id rules, shown to clients rather than copied.
from assistant_service.application.service import _CONVERSATION_ID, _RUN_ID
from assistant_service.domain.models import Role, RunStatus
from assistant_service.domain.tools import OutcomeStatus
from assistant_service.entrypoints.http.access import OPEN_PATHS

__all__ = ["openapi_document"]

JSON = "application/json"
SSE = "text/event-stream"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _object(
    properties: dict[str, Any], required: tuple[str, ...] = (), *, closed: bool = False
) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    if closed:
        schema["additionalProperties"] = False
    return schema


def _enum(kind: type[Any]) -> dict[str, Any]:
    return {"type": "string", "enum": [member.value for member in kind]}


STRING = {"type": "string"}
THREAD_ID = {"type": "string", "pattern": f"^{_CONVERSATION_ID.pattern}$"}
RUN_ID = {"type": "string", "pattern": f"^{_RUN_ID.pattern}$"}
NULLABLE_STRING = {"type": ["string", "null"]}

# Status -> what it means on this API; each operation lists the ones it can answer.
_ERRORS = {
    "400": "Malformed JSON (`malformed_request`).",
    "401": "No API key, or an unknown one (`unauthenticated`), when `API_KEYS` is set.",
    "403": "An assistant this API key may not use (`forbidden`).",
    "404": "Unknown thread, run or assistant (`not_found`).",
    "405": "The method is not allowed on this path (`method_not_allowed`).",
    "409": "A run is already active on the thread, or the run has ended (`conflict`).",
    "413": "The body is larger than `MAX_BODY_BYTES` (`payload_too_large`).",
    "422": "Invalid fields (`invalid_input`); `fields` names each one and what is wrong.",
    "429": "The caller's rate limit is reached (`rate_limited`, with `RateLimit-Limit`,"
    " `-Remaining` and `-Reset`), or, for a request that starts a run, its API key's daily"
    " token budget is used up (`budget_exhausted`); `Retry-After` and `retry_after` say when"
    " to come back.",
    "500": "Anything else (`internal_error`): no details in the body, the traceback in the log.",
    "502": "The model's provider failed or sent a reply of the wrong shape (`upstream_error`),"
    " or `run_limit_exceeded`.",
    "503": "Upstream unavailable (`upstream_unavailable`), the circuit breaker open"
    " (`upstream_circuit_open`: no upstream call was made), `overloaded`, or"
    " `shutting_down` (the server is stopping: no new run, and a run still going at"
    " `GRACEFUL_TIMEOUT` ends so), with `Retry-After` when known.",
}
_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before retrying, when known.",
        "schema": {"type": "string"},
    }
}
_RATE_LIMIT_HEADERS = {
    "RateLimit-Limit": {
        "description": "Requests the caller's rate limit allows per period.",
        "schema": {"type": "string"},
    },
    "RateLimit-Remaining": {
        "description": "Requests left in the current window.",
        "schema": {"type": "string"},
    },
    "RateLimit-Reset": {
        "description": "Seconds until the window frees a request.",
        "schema": {"type": "string"},
    },
}


def _errors(*statuses: str) -> dict[str, Any]:
    answers: dict[str, Any] = {}
    for status in (*statuses, "405", "500"):
        answer: dict[str, Any] = {
            "description": _ERRORS[status],
            "content": {JSON: {"schema": _ref("Error")}},
        }
        if status == "503":
            answer["headers"] = _RETRY_AFTER
        if status == "429":
            answer["headers"] = {**_RETRY_AFTER, **_RATE_LIMIT_HEADERS}
        answers[status] = answer
    return answers


def _json(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def _sse_content() -> dict[str, Any]:
    return {
        SSE: {
            "schema": {
                "type": "string",
                "description": "One server-sent event per run event: `id: <seq>`,"
                " `event: <type>`, `data: <the Event as JSON>`.",
            },
            "x-item-schema": _ref("Event"),
        }
    }


_THREAD = {
    "name": "thread_id",
    "in": "path",
    "required": True,
    "schema": THREAD_ID,
    "description": "The thread (conversation) id that `GET /start` answered.",
}
_RUN = {"name": "run_id", "in": "path", "required": True, "schema": RUN_ID}


def _schemas() -> dict[str, Any]:
    usage = _object(
        {"input_tokens": {"type": "integer"}, "output_tokens": {"type": "integer"}},
        ("input_tokens", "output_tokens"),
    )
    tool_call = _object(
        {
            "id": STRING,
            "name": STRING,
            "status": _enum(OutcomeStatus),
            "duration_ms": {"type": "number"},
        },
        ("id", "name", "status", "duration_ms"),
    )
    pending = _object(
        {"id": STRING, "name": STRING, "arguments": {"type": "string", "description": "JSON"}},
        ("id", "name", "arguments"),
    )
    result = _object(
        {
            "thread_id": STRING,
            "run_id": STRING,
            "status": _enum(RunStatus),
            "responses": {"type": "array", "items": STRING},
            "tool_calls": {"type": "array", "items": _ref("ToolCallSummary")},
            "usage": _ref("Usage"),
            "pending": {
                "type": "array",
                "items": _ref("PendingCall"),
                "description": "The calls waiting for a decision (`requires_approval` only).",
            },
        },
        ("thread_id", "run_id", "status", "responses", "tool_calls", "usage"),
    )
    error_body = _object(
        {
            "code": {
                "type": "string",
                "examples": ["malformed_request", "invalid_input", "not_found", "conflict"],
            },
            "message": STRING,
            "correlation_id": STRING,
            "fields": {
                "type": "object",
                "additionalProperties": STRING,
                "description": "422 only: each bad field and what is wrong with it.",
            },
            "retry_after": {"type": "number", "description": "429, and 503 when known."},
        },
        ("code", "message", "correlation_id"),
    )
    return {
        "Usage": usage,
        "ToolCallSummary": tool_call,
        "PendingCall": pending,
        "ChatResult": result,
        "Error": _object({"error": error_body}, ("error",)),
        "ChatRequest": _object(
            {
                "thread_id": THREAD_ID,
                "message": {
                    "type": "string",
                    "pattern": "\\S",
                    "description": "Not blank; at most `MAX_MESSAGE_LENGTH` characters (and"
                    " the assistant's own limit).",
                },
                "on_disconnect": {
                    "type": "string",
                    "enum": ["cancel", "continue"],
                    "default": "cancel",
                    "description": "`continue` keeps the run going when the client leaves.",
                },
                "background": {
                    "type": "boolean",
                    "default": False,
                    "description": "Answer 202 at once; the run goes on in the background.",
                },
                "type": {"const": "message", "description": "WebSocket frames only."},
                "id": {
                    "type": "string",
                    "description": "WebSocket frames only: echoed as `frame_id`.",
                },
            },
            ("thread_id", "message"),
            closed=True,
        ),
        "Accepted": _object(
            {"thread_id": STRING, "run_id": STRING, "status": {"const": "in_progress"}},
            ("thread_id", "run_id", "status"),
        ),
        "Decision": _object(
            {"call_id": STRING, "approve": {"type": "boolean"}, "reason": NULLABLE_STRING},
            ("call_id", "approve"),
            closed=True,
        ),
        "ApprovalsRequest": _object(
            {
                "decisions": {"type": "array", "items": _ref("Decision")},
                "run_id": {**RUN_ID, "description": "WebSocket frames only (required there)."},
                "thread_id": {**THREAD_ID, "description": "WebSocket frames only."},
                "type": {"const": "approvals"},
                "id": NULLABLE_STRING,
            },
            ("decisions",),
            closed=True,
        ),
        "Run": _object(
            {
                "run_id": STRING,
                "thread_id": STRING,
                "status": _enum(RunStatus),
                "resumes": STRING,
                "resumed_by": STRING,
                "result": _ref("ChatResult"),
                "error": _object({"code": STRING, "message": NULLABLE_STRING}, ("code",)),
            },
            ("run_id", "thread_id", "status"),
        ),
        "Cancelling": _object(
            {"run_id": STRING, "status": {"const": "cancelling"}}, ("run_id", "status")
        ),
        "HistoryPage": _object(
            {
                "thread_id": STRING,
                "messages": {
                    "type": "array",
                    "items": _object({"role": _enum(Role), "text": STRING}, ("role", "text")),
                },
                "has_more": {"type": "boolean"},
                "next_cursor": NULLABLE_STRING,
            },
            ("thread_id", "messages", "has_more", "next_cursor"),
        ),
        "Assistant": _object(
            {
                "id": STRING,
                "model": STRING,
                "tools": {"type": "array", "items": STRING},
                "approval_required": {"type": "array", "items": STRING},
                "default": {"type": "boolean"},
            },
            ("id", "model", "tools", "approval_required", "default"),
        ),
        "Assistants": _object(
            {"assistants": {"type": "array", "items": _ref("Assistant")}}, ("assistants",)
        ),
        "Thread": _object({"thread_id": STRING}, ("thread_id",)),
        "Health": _object({"status": {"const": "ok"}}, ("status",)),
        "Readiness": _object(
            {
                "status": {"type": "string", "enum": ["ready", "unavailable"]},
                "checks": {"type": "object", "additionalProperties": STRING},
                "breakers": {
                    "type": "object",
                    "description": "Each upstream's circuit breaker (`llm`), when there is one."
                    " An open breaker leaves the service ready.",
                    "additionalProperties": _ref("Breaker"),
                },
            },
            ("status", "checks"),
        ),
        "Breaker": _object(
            {
                "state": {"type": "string", "enum": ["closed", "open", "half_open"]},
                "consecutive_failures": {"type": "integer", "minimum": 0},
                "retry_after": {
                    "type": "number",
                    "minimum": 0,
                    "description": "Seconds until a probe may go through (0 unless open).",
                },
            },
            ("state", "consecutive_failures", "retry_after"),
            closed=True,
        ),
        "Event": _event_schema(),
        **_frame_schemas(),
    }


def _event(kind: str, properties: dict[str, Any], required: tuple[str, ...]) -> dict[str, Any]:
    base = {
        "type": {"const": kind},
        "run_id": STRING,
        "seq": {"type": "integer", "minimum": 1, "description": "1, 2, 3... per run, no gaps."},
        "correlation_id": STRING,
    }
    return _object({**base, **properties}, ("type", *required))


def _event_schema() -> dict[str, Any]:
    final = {
        "thread_id": STRING,
        "status": _enum(RunStatus),
        "responses": {"type": "array", "items": STRING},
        "tool_calls": {"type": "array", "items": _ref("ToolCallSummary")},
        "usage": _ref("Usage"),
        "pending": {"type": "array", "items": _ref("PendingCall")},
    }
    call = {"id": STRING, "name": STRING, "arguments": STRING}
    events = [
        _event(
            "run.started",
            {"thread_id": STRING, "assistant_id": STRING, "resumes": STRING},
            ("run_id", "thread_id", "assistant_id"),
        ),
        _event("message.delta", {"text": STRING}, ("run_id", "text")),
        _event("message.completed", {"role": _enum(Role), "text": STRING}, ("run_id", "text")),
        _event("tool_call.started", call, ("run_id", "id", "name", "arguments")),
        _event(
            "tool_call.completed",
            {
                "id": STRING,
                "name": STRING,
                "status": _enum(OutcomeStatus),
                "output": STRING,
                "duration_ms": {"type": "number"},
            },
            ("run_id", "id", "name", "status", "output", "duration_ms"),
        ),
        _event("tool_call.approval_required", call, ("run_id", "id", "name", "arguments")),
        _event("run.completed", final, ("run_id", "status", "responses")),
        _event("run.requires_approval", final, ("run_id", "status", "pending")),
        _event("run.cancelled", final, ("run_id", "status")),
        _event(
            "cancel.accepted",
            {"status": {"const": "cancelling"}, "frame_id": STRING},
            ("run_id", "status"),
        ),
        _event(
            "error",
            {
                "code": STRING,
                "message": STRING,
                "fields": {"type": "object", "additionalProperties": STRING},
                "retry_after": {"type": "number"},
                "frame_id": {
                    "type": "string",
                    "description": "The `id` of the WebSocket frame this refuses.",
                },
            },
            ("code", "message"),
        ),
    ]
    return {
        "description": "A run event, as server-sent events and WebSocket messages carry it."
        " A run ends with exactly one of `run.completed`, `run.requires_approval`,"
        " `run.cancelled` or `error`. `cancel.accepted` and an `error` with `frame_id`"
        " answer a WebSocket frame.",
        "oneOf": events,
    }


def _frame_schemas() -> dict[str, Any]:
    return {
        "CancelFrame": _object(
            {"type": {"const": "cancel"}, "run_id": STRING, "thread_id": STRING, "id": STRING},
            ("type", "run_id"),
            closed=True,
        ),
        "ResumeFrame": _object(
            {
                "type": {"const": "resume"},
                "run_id": STRING,
                "after": {"type": "integer", "minimum": 0, "default": 0},
                "thread_id": STRING,
                "id": STRING,
            },
            ("type", "run_id"),
            closed=True,
        ),
        "Frame": {
            "description": "A WebSocket frame the client sends to `/stream` (JSON text).",
            "oneOf": [
                _ref("ChatRequest"),
                _ref("ApprovalsRequest"),
                _ref("CancelFrame"),
                _ref("ResumeFrame"),
            ],
        },
    }


_STREAM = """\
A WebSocket, not an HTTP operation (OpenAPI cannot describe one): upgrade this GET.

Send JSON text frames (`Frame`), as many as you like on one connection, one run
at a time: `message` (the default type: `{"thread_id", "message", "on_disconnect"?}`),
`cancel` (`{"type": "cancel", "run_id"}`, acknowledged with `cancel.accepted`),
`approvals` (`{"type": "approvals", "run_id", "decisions"}`: the continuing run streams
on the socket) and `resume` (`{"type": "resume", "run_id", "after": N}`: replay the
events after `N`, then follow the run live). Receive one JSON `Event` per message.

A frame may carry an `id`: what answers the frame rather than belonging to a run
(a refusal, an acknowledgement) echoes it as `frame_id`. A bad frame (not JSON,
binary, wrong fields, too long, unknown thread, a second stream while one is going)
gets an `error` event and the socket stays usable. A client that disconnects cancels
its run, unless its message said `"on_disconnect": "continue"`; so does a client
that reads nothing for `SEND_TIMEOUT` (it is disconnected). Idle sockets are
closed (1001) after `WS_IDLE_TIMEOUT`; frames over four times `MAX_WS_MESSAGE_BYTES`
close it (1009). When the server shuts down, idle sockets are closed (1001); a run
still going at `GRACEFUL_TIMEOUT` ends with an `error` event (`shutting_down`,
with its `run_id`), then the socket is closed (1001)."""


def _paths(*, metrics: bool, playground: bool) -> dict[str, Any]:
    chat_answer = {
        "description": "The finished run (JSON), or its events as they come (SSE, when"
        " `Accept: text/event-stream`).",
        "content": {JSON: {"schema": _ref("ChatResult")}, **_sse_content()},
    }
    paths: dict[str, Any] = {
        "/start": {
            "get": {
                "operationId": "start",
                "summary": "Start a thread (conversation)",
                "parameters": [
                    {
                        "name": "assistant_id",
                        "in": "query",
                        "schema": {"type": "string", "maxLength": 128},
                        "description": "The assistant; the default one when left out.",
                    }
                ],
                "responses": {
                    "200": _json("The new thread.", _ref("Thread")),
                    **_errors("404", "422", "502", "503"),
                },
            }
        },
        "/assistants": {
            "get": {
                "operationId": "listAssistants",
                "summary": "The assistants this service serves (to an API key: those it may use)",
                "responses": {
                    "200": _json("Every assistant.", _ref("Assistants")),
                    **_errors("503"),
                },
            }
        },
        "/chat": {
            "post": {
                "operationId": "chat",
                "summary": "Send a message; answer with the run (JSON or SSE)",
                "description": "`background: true` answers 202 at once; follow the run with"
                " `GET .../runs/{run_id}` or its events. `on_disconnect: continue` keeps the"
                " run going when the client leaves.",
                "requestBody": {
                    "required": True,
                    "content": {JSON: {"schema": _ref("ChatRequest")}},
                },
                "responses": {
                    "200": chat_answer,
                    "202": _json("`background: true`: the run started.", _ref("Accepted")),
                    **_errors("400", "404", "409", "413", "422", "502", "503"),
                },
            }
        },
        "/threads/{thread_id}/messages": {
            "get": {
                "operationId": "history",
                "summary": "A thread's messages, oldest first, one page at a time",
                "parameters": [
                    _THREAD,
                    {
                        "name": "limit",
                        "in": "query",
                        "schema": {
                            "type": "integer",
                            "minimum": 1,
                            "maximum": MAX_PAGE_SIZE,
                            "default": DEFAULT_PAGE_SIZE,
                        },
                    },
                    {
                        "name": "cursor",
                        "in": "query",
                        "schema": STRING,
                        "description": "The previous page's `next_cursor` (opaque).",
                    },
                ],
                "responses": {
                    "200": _json("One page.", _ref("HistoryPage")),
                    **_errors("404", "422", "502", "503"),
                },
            }
        },
        "/threads/{thread_id}/runs/{run_id}": {
            "get": {
                "operationId": "getRun",
                "summary": "Where a run is, and how it ended",
                "parameters": [_THREAD, _RUN],
                "responses": {"200": _json("The run.", _ref("Run")), **_errors("404", "503")},
            }
        },
        "/threads/{thread_id}/runs/{run_id}/cancel": {
            "post": {
                "operationId": "cancelRun",
                "summary": "Cancel a run, from any instance",
                "parameters": [_THREAD, _RUN],
                "responses": {
                    "202": _json("The run is being cancelled.", _ref("Cancelling")),
                    **_errors("404", "409", "503"),
                },
            }
        },
        "/threads/{thread_id}/runs/{run_id}/approvals": {
            "post": {
                "operationId": "approveRun",
                "summary": "Decide a run's pending tool calls; answer with the continuing run",
                "parameters": [_THREAD, _RUN],
                "requestBody": {
                    "required": True,
                    "content": {JSON: {"schema": _ref("ApprovalsRequest")}},
                },
                "responses": {
                    "200": chat_answer,
                    **_errors("400", "404", "409", "413", "422", "502", "503"),
                },
            }
        },
        "/threads/{thread_id}/runs/{run_id}/events": {
            "get": {
                "operationId": "runEvents",
                "summary": "A run's events after `after` (or `Last-Event-ID`), then live (SSE)",
                "parameters": [
                    _THREAD,
                    _RUN,
                    {
                        "name": "after",
                        "in": "query",
                        "schema": {
                            "type": "integer",
                            "minimum": 0,
                            "maximum": 999_999_999_999,
                            "default": 0,
                        },
                        "description": "The last `seq` the client has.",
                    },
                    {
                        "name": "Last-Event-ID",
                        "in": "header",
                        "schema": {"type": "string", "pattern": "^[0-9]{1,12}$"},
                        "description": "As `after`, when `after` is left out.",
                    },
                ],
                "responses": {
                    "200": {
                        "description": "The events, as server-sent events.",
                        "content": _sse_content(),
                    },
                    **_errors("404", "422", "503"),
                },
            }
        },
        "/stream": {
            "get": {
                "operationId": "stream",
                "summary": "WebSocket: chat, cancel, approve and resume; one JSON event per message",
                "description": _STREAM,
                "responses": {
                    "101": {"description": "Switching to the WebSocket protocol."},
                    "400": {
                        "description": "Not a WebSocket upgrade (`bad_request`).",
                        "content": {JSON: {"schema": _ref("Error")}},
                    },
                    "403": {
                        "description": "The handshake's `Origin` is neither in `CORS_ORIGINS`"
                        " nor this service's own (`origin_refused`).",
                        "content": {JSON: {"schema": _ref("Error")}},
                    },
                },
            }
        },
        "/healthz": {
            "get": {
                "operationId": "healthz",
                "summary": "Alive",
                "responses": {"200": _json("The process lives.", _ref("Health")), **_errors()},
            }
        },
        "/readyz": {
            "get": {
                "operationId": "readyz",
                "summary": "Ready: configs, required secrets and the state store are reachable;"
                " the circuit breakers' states",
                "responses": {
                    "200": _json("Ready.", _ref("Readiness")),
                    "503": _json("Not ready, or shutting down.", _ref("Readiness")),
                    **_errors(),
                },
            }
        },
        "/openapi.json": {
            "get": {
                "operationId": "openapi",
                "summary": "This document",
                "responses": {"200": _json("OpenAPI 3.1.", {"type": "object"}), **_errors()},
            }
        },
        "/docs": {
            "get": {
                "operationId": "docs",
                "summary": "This document, rendered (HTML)",
                "responses": {"200": _html("The API reference."), **_errors()},
            }
        },
        "/assets/{name}": {
            "get": {
                "operationId": "asset",
                "summary": "The scripts and styles of `/docs` and the playground",
                "parameters": [{"name": "name", "in": "path", "required": True, "schema": STRING}],
                "responses": {
                    "200": {
                        "description": "The asset.",
                        "content": {
                            "text/javascript": {"schema": STRING},
                            "text/css": {"schema": STRING},
                        },
                    },
                    **_errors("404"),
                },
            }
        },
    }
    if playground:
        paths["/"] = {
            "get": {
                "operationId": "playground",
                "summary": "The playground: chat with an assistant in the browser (`PLAYGROUND`)",
                "responses": {"200": _html("The playground page."), **_errors()},
            }
        }
    if metrics:
        paths["/metrics"] = {
            "get": {
                "operationId": "metrics",
                "summary": "Prometheus metrics (`METRICS=on`, without `METRICS_PORT`)",
                "responses": {
                    "200": {
                        "description": "The metrics, in Prometheus' text format.",
                        "content": {"text/plain": {"schema": STRING}},
                    },
                    **_errors(),
                },
            }
        }
    return paths


def _html(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"text/html": {"schema": STRING}}}


def openapi_document(
    *,
    metrics: bool = False,
    playground: bool = False,
    api_keys: bool = False,
    rate_limits: bool = False,
) -> dict[str, Any]:
    """The OpenAPI 3.1 document; ``metrics``, ``playground``, ``api_keys``: what is served.

    With ``api_keys``, every operation but the health checks and the pages
    needs a key (``Authorization: Bearer`` or ``X-API-Key``), and
    ``POST /ws-tickets`` is there. With ``rate_limits`` (a rate limit or a
    token budget is set), the same operations may answer 429.
    """
    paths = _paths(metrics=metrics, playground=playground)
    components: dict[str, Any] = {"schemas": _schemas()}
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "assistant-service",
            "version": "1",
            "description": "A tool-using AI assistant over HTTP and WebSocket. Every response"
            ' carries `X-Correlation-ID`; every error is `{"error": {"code", "message",'
            ' "correlation_id"}}`.',
        },
        "paths": paths,
        "components": components,
    }
    if api_keys:
        components["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer"},
            "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
        }
        paths["/ws-tickets"] = {
            "post": {
                "operationId": "wsTicket",
                "summary": "A single-use ticket to open `/stream?ticket=...` (browsers)",
                "description": "Good for `expires_in` seconds (30), once, on any instance"
                " that shares the state store.",
                "responses": {
                    "201": _json(
                        "The ticket, and the seconds it stays valid.",
                        {
                            "type": "object",
                            "properties": {
                                "ticket": STRING,
                                "expires_in": {"type": "number"},
                            },
                            "required": ["ticket", "expires_in"],
                        },
                    ),
                    **_errors("401"),
                },
            }
        }
        paths["/start"]["get"]["responses"].update(_errors("403"))
        for path, item in paths.items():
            if _is_open(path):
                continue
            for operation in item.values():
                operation["security"] = [{"bearer": []}, {"apiKey": []}]
                operation["responses"].setdefault("401", _errors("401")["401"])
    if rate_limits:
        for path, item in paths.items():
            if _is_open(path) or path == "/metrics":
                continue
            for operation in item.values():
                operation["responses"].setdefault("429", _errors("429")["429"])
    return document


def _is_open(path: str) -> bool:
    """The health checks and the pages: no key needed, no limit counted."""
    return path in OPEN_PATHS or path == "/" or path.startswith(("/docs", "/openapi", "/assets"))
