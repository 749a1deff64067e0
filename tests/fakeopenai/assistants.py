"""Routes of the Assistants API (threads, messages, streamed runs) on the fake OpenAI server.

``install(server)`` registers them and returns the :class:`AssistantsState`
that tests script (``state.play(reply("hi"), calls(...))``) and inspect.
Route names (for ``server.script`` and ``server.requests_to``) are the SDK's
method paths: ``assistants.create``, ``assistants.retrieve``, ``threads.create``,
``messages.create``, ``runs.create``, ``runs.submit_tool_outputs``, ``runs.cancel``...
A run must name an assistant the server knows (``state.create_assistant``), as on
a real server: any other is a 404.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from fakeopenai.assistants_state import (
    ApiError,
    AssistantsState,
    RunStep,
    call,
    calls,
    ended,
    reply,
    run_object,
)
from fakeopenai.assistants_stream import run_step_items
from fakeopenai.server import (
    FakeOpenAIServer,
    JSONReply,
    RecordedRequest,
    Reply,
    SSEReply,
    error_reply,
)

__all__ = ["AssistantsState", "RunStep", "call", "calls", "ended", "install", "plant_run", "reply"]

_ASSISTANT = r"/v1/assistants/(?P<assistant>[^/]+)"
_THREAD = r"/v1/threads/(?P<thread>[^/]+)"
_RUN = _THREAD + r"/runs/(?P<run>[^/]+)"


def install(server: FakeOpenAIServer, state: AssistantsState | None = None) -> AssistantsState:
    """Register the Assistants-API routes on ``server``; returns their state."""
    state = state or AssistantsState()
    lock = threading.Lock()  # the server answers each connection in its own thread

    def route(method: str, pattern: str, name: str, handler: Callable[..., Reply]) -> None:
        def guarded(request: RecordedRequest) -> Reply:
            with lock:
                try:
                    return handler(state, request.body or {}, request, **request.params)
                except ApiError as error:
                    return error_reply(error.status, error.message, headers=error.headers)

        server.route(method, pattern, name, guarded)

    route("POST", r"/v1/assistants", "assistants.create", _create_assistant)
    route("GET", r"/v1/assistants", "assistants.list", _list_assistants)
    route(
        "GET",
        _ASSISTANT,
        "assistants.retrieve",
        lambda s, _b, _r, assistant: JSONReply(s.assistant(assistant)),
    )
    route(
        "POST",
        _ASSISTANT,
        "assistants.update",
        lambda s, b, _r, assistant: JSONReply(s.update_assistant(assistant, b)),
    )
    route("POST", r"/v1/threads", "threads.create", _create_thread)
    route("GET", _THREAD, "threads.retrieve", lambda s, _b, _r, thread: JSONReply(s.thread(thread)))
    route("POST", _THREAD + "/messages", "messages.create", _create_message)
    route("GET", _THREAD + "/messages", "messages.list", _list_messages)
    route("POST", _THREAD + "/runs", "runs.create", _create_run)
    route("GET", _THREAD + "/runs", "runs.list", _list_runs)
    route(
        "GET",
        _RUN,
        "runs.retrieve",
        lambda s, _b, _r, thread, run: JSONReply(s.retrieve_run(thread, run)),
    )
    route(
        "POST",
        _RUN + "/cancel",
        "runs.cancel",
        lambda s, _b, _r, thread, run: JSONReply(s.cancel_run(thread, run)),
    )
    route("POST", _RUN + "/submit_tool_outputs", "runs.submit_tool_outputs", _submit_outputs)
    return state


def plant_run(
    state: AssistantsState,
    thread_id: str,
    status: str,
    *,
    tool_calls: tuple[tuple[str, str, str], ...] = (),
    age: float = 3600.0,
) -> dict[str, Any]:
    """Leave a run on a thread as a crashed process would have left it, ``age`` seconds ago."""
    state.thread(thread_id)
    required = None
    if tool_calls:
        required = {
            "type": "submit_tool_outputs",
            "submit_tool_outputs": {
                "tool_calls": [
                    {"id": i, "type": "function", "function": {"name": n, "arguments": a}}
                    for i, n, a in tool_calls
                ]
            },
        }
    run = run_object(
        thread_id,
        "asst_planted",
        status=status,
        required_action=required,
        created_at=int(time.time() - age),
    )
    state.runs[thread_id].append(run)
    return run


def _create_assistant(state: AssistantsState, body: dict, _request: RecordedRequest) -> Reply:
    return JSONReply(state.create_assistant(body))


def _list_assistants(state: AssistantsState, _b: dict, request: RecordedRequest) -> Reply:
    return JSONReply(_page(list(state.assistants.values()), request))


def _create_thread(state: AssistantsState, body: dict, _request: RecordedRequest) -> Reply:
    return JSONReply(state.create_thread(body.get("metadata")))


def _create_message(state: AssistantsState, body: dict, _r: RecordedRequest, thread: str) -> Reply:
    content = body.get("content")
    if not isinstance(content, str) or body.get("role") != "user":
        raise ApiError(400, "a user message with string content is expected")
    return JSONReply(state.add_message(thread, "user", content))


def _create_run(state: AssistantsState, body: dict, _r: RecordedRequest, thread: str) -> Reply:
    if body.get("stream") is not True:
        raise ApiError(400, "this fake server only streams runs")
    if not body.get("assistant_id"):
        raise ApiError(400, "Missing required parameter: 'assistant_id'.")
    state.thread(thread)
    state.assistant(body["assistant_id"])  # before a scripted step is used up
    step = state.next_step("create", thread)
    run = state.create_run(thread, body, model=body.get("model") or "fake-model")
    return SSEReply(run_step_items(state, run, step))


def _submit_outputs(
    state: AssistantsState, body: dict, _r: RecordedRequest, thread: str, run: str
) -> Reply:
    found = state.run(thread, run)
    state.check_outputs(found, body.get("tool_outputs") or [])
    if body.get("stream") is not True:
        raise ApiError(400, "this fake server only streams runs")
    return SSEReply(run_step_items(state, found, state.next_step("submit", thread)))


def _list_messages(
    state: AssistantsState, _b: dict, request: RecordedRequest, thread: str
) -> Reply:
    state.thread(thread)
    return JSONReply(_page(state.messages[thread], request))


def _list_runs(state: AssistantsState, _b: dict, request: RecordedRequest, thread: str) -> Reply:
    state.thread(thread)
    return JSONReply(_page(state.runs[thread], request))


def _page(items: list[dict[str, Any]], request: RecordedRequest) -> dict[str, Any]:
    """A cursor page as the API lists: ``order`` (default desc), ``limit``, ``after``."""
    query = request.query
    ordered = list(items) if query.get("order", ["desc"])[0] == "asc" else items[::-1]
    after = query.get("after", [None])[0]
    if after is not None:
        ids = [item["id"] for item in ordered]
        ordered = ordered[ids.index(after) + 1 :] if after in ids else []
    limit = int(query.get("limit", ["20"])[0])
    data = ordered[:limit]
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": len(ordered) > limit,
    }
