"""The Responses and Conversations API of the fake: routes, state, scripted model turns.

A test queues :class:`Turn` objects (what the "model" does next) with
``fake.responses.turn(...)``; ``POST /v1/responses`` plays the next one as the
SSE stream the SDK parses. Conversations keep their items as the real service
does: a response that completes adds its input and output items. Like the real
API, a request is refused with 400 when the conversation plus its input holds a
``function_call`` with no ``function_call_output`` (or an output for no call).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import attrs

from fakeopenai.server import FakeOpenAIServer, JSONReply, RecordedRequest, Reply, error_reply
from fakeopenai.turns import Turn, build_stream

CONVERSATION_PATH = r"/v1/conversations/(?P<conversation_id>[A-Za-z0-9_-]+)"


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


@attrs.define
class FakeConversation:
    id: str
    created_at: int
    metadata: dict[str, str]
    items: list[dict[str, Any]] = attrs.field(factory=list)

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "conversation",
            "created_at": self.created_at,
            "metadata": self.metadata,
        }


@attrs.define
class ResponsesFake:
    """State and routes of ``/v1/responses`` and ``/v1/conversations``."""

    conversations: dict[str, FakeConversation] = attrs.field(factory=dict)
    # Answers a request when no turn is queued (the benchmark uses it); else a 500.
    default: Callable[[RecordedRequest], Turn] | None = None
    _turns: deque[Turn] = attrs.field(factory=deque, init=False)
    _lock: threading.Lock = attrs.field(factory=threading.Lock, init=False)

    @classmethod
    def install(cls, server: FakeOpenAIServer) -> ResponsesFake:
        fake = cls()
        server.route("POST", r"/v1/responses", "responses.create", fake._create_response)
        server.route("POST", r"/v1/conversations", "conversations.create", fake._create)
        server.route("GET", CONVERSATION_PATH, "conversations.retrieve", fake._retrieve)
        server.route("GET", CONVERSATION_PATH + "/items", "conversations.items.list", fake._list)
        server.route("POST", CONVERSATION_PATH + "/items", "conversations.items.create", fake._add)
        return fake

    def turn(self, *turns: Turn) -> None:
        """Queue what the model does in its next responses, in order."""
        with self._lock:
            self._turns.extend(turns)

    @property
    def remaining_turns(self) -> int:
        return len(self._turns)

    def add_conversation(self, metadata: dict[str, str] | None = None) -> FakeConversation:
        conversation = FakeConversation(new_id("conv"), int(time.time()), dict(metadata or {}))
        with self._lock:
            self.conversations[conversation.id] = conversation
        return conversation

    # --- conversations -------------------------------------------------------

    def _create(self, request: RecordedRequest) -> Reply:
        body = request.body or {}
        conversation = self.add_conversation(body.get("metadata") or {})
        conversation.items.extend(normalize_items(body.get("items") or []))
        return JSONReply(conversation.public())

    def _retrieve(self, request: RecordedRequest) -> Reply:
        conversation = self.conversations.get(request.params["conversation_id"])
        return JSONReply(conversation.public()) if conversation else _no_conversation(request)

    def _list(self, request: RecordedRequest) -> Reply:
        conversation = self.conversations.get(request.params["conversation_id"])
        if conversation is None:
            return _no_conversation(request)
        with self._lock:
            items = list(conversation.items)
        if request.query.get("order", ["desc"])[0] == "desc":
            items.reverse()
        after = request.query.get("after", [None])[0]
        if after is not None:
            ids = [item["id"] for item in items]
            items = items[ids.index(after) + 1 :] if after in ids else []
        limit = min(int(request.query.get("limit", ["20"])[0]), 100)
        page = items[:limit]
        return JSONReply(
            {
                "object": "list",
                "data": page,
                "first_id": page[0]["id"] if page else None,
                "last_id": page[-1]["id"] if page else None,
                "has_more": len(items) > limit,
            }
        )

    def _add(self, request: RecordedRequest) -> Reply:
        conversation = self.conversations.get(request.params["conversation_id"])
        if conversation is None:
            return _no_conversation(request)
        items = normalize_items((request.body or {}).get("items") or [])
        with self._lock:
            conversation.items.extend(items)
        first, last = (items[0]["id"], items[-1]["id"]) if items else (None, None)
        return JSONReply(
            {"object": "list", "data": items, "first_id": first, "last_id": last, "has_more": False}
        )

    # --- responses -----------------------------------------------------------

    def _create_response(self, request: RecordedRequest) -> Reply:
        body = request.body or {}
        conversation_ref = body.get("conversation")
        if isinstance(conversation_ref, dict):
            conversation_ref = conversation_ref.get("id")
        conversation = self.conversations.get(conversation_ref) if conversation_ref else None
        if conversation_ref and conversation is None:
            return _no_conversation(request, conversation_ref)
        raw_input = body.get("input") or []
        inputs = normalize_items(
            [{"role": "user", "content": raw_input}] if isinstance(raw_input, str) else raw_input
        )
        history = list(conversation.items) if conversation else []
        problem = unanswered_problem(history + inputs)
        if problem:
            return error_reply(400, problem)
        with self._lock:
            turn = self._turns.popleft() if self._turns else None
        if turn is None and self.default is not None:
            turn = self.default(request)
        if turn is None:
            # x-should-retry: false, so a forgotten turn fails the test at once.
            return error_reply(500, "fake: no turn scripted", headers={"x-should-retry": "false"})
        reply, output = build_stream(turn, body, new_id("resp"))
        if conversation is not None and turn.succeeds:
            with self._lock:
                conversation.items.extend(inputs + output)
        return reply


def normalize_items(items: Sequence[Any]) -> list[dict[str, Any]]:
    """Input items as the service stores them: typed, with ids and content parts."""
    normalized: list[dict[str, Any]] = []
    for raw in items:
        item = dict(raw)
        kind = item.setdefault("type", "message")
        if kind == "message":
            role = item.get("role", "user")
            part = "output_text" if role == "assistant" else "input_text"
            content = item.get("content", "")
            if isinstance(content, str):
                content = [{"type": part, "text": content}]
            # the service stores output text with its (here empty) annotations and logprobs
            item["content"] = [
                {"annotations": [], "logprobs": [], **p} if p.get("type") == "output_text" else p
                for p in content
            ]
            item.setdefault("status", "completed")
            item.setdefault("id", new_id("msg"))
        elif kind == "function_call_output":
            item.setdefault("id", new_id("fco"))
            item.setdefault("status", "completed")
        elif kind == "function_call":
            item.setdefault("id", new_id("fc"))
            item.setdefault("status", "completed")
        normalized.append(item)
    return normalized


def unanswered_problem(items: Sequence[dict[str, Any]]) -> str | None:
    """The 400 message the real API gives for an unpaired call or output, if any."""
    calls = [i["call_id"] for i in items if i.get("type") == "function_call"]
    outputs = {i["call_id"] for i in items if i.get("type") == "function_call_output"}
    for call_id in calls:
        if call_id not in outputs:
            return f"No tool output found for function call {call_id}."
    for call_id in outputs - set(calls):
        return f"No tool call found for function call output with call_id {call_id}."
    return None


def _no_conversation(request: RecordedRequest, conversation_id: str | None = None) -> JSONReply:
    missing = conversation_id or request.params.get("conversation_id", "")
    return error_reply(404, f"Conversation with id '{missing}' not found.")
