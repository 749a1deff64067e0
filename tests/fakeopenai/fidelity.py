"""Check what the fake sent against the ``openai`` SDK's own typed models.

The fake and the adapters are written by the same people, so the fake could
send what the real API never does and the adapters would pass anyway. The
SDK's types are generated from OpenAI's API specification: :func:`problems`
validates one recorded reply (see ``FakeOpenAIServer.replies``) against them
and lists what does not fit: a validation error (a missing required field, a
wrong type), an event type the SDK does not know, an ``event:`` name that is
not the payload's ``type``, or a field the type does not declare (the SDK
keeps unknown fields silently, so an adapter could come to rely on one).
Intentionally broken bytes (:class:`Raw`) are not events and are skipped.
"""

from __future__ import annotations

import typing
from collections.abc import Mapping
from typing import Any

import pydantic
from openai import BaseModel
from openai.types.beta import Assistant, AssistantStreamEvent, Thread
from openai.types.beta.threads import Message, Run
from openai.types.chat import ChatCompletionChunk
from openai.types.conversations import Conversation, ConversationItemList
from openai.types.responses import ResponseStreamEvent
from openai.types.shared import ErrorObject

from fakeopenai.server import JSONReply, RawReply, RecordedRequest, Reply, SSEEvent

_PAGE_KEYS = {"object", "data", "first_id", "last_id", "has_more"}


def _members(union: Any) -> tuple[Any, ...]:
    # The SDK's unions are Annotated[Union[...], PropertyInfo(discriminator=...)].
    if typing.get_origin(union) is typing.Annotated:
        return _members(typing.get_args(union)[0])
    return typing.get_args(union)


def _by_literal(union: Any, field: str) -> dict[str, type[BaseModel]]:
    """The union's member classes keyed by the literal value(s) of their ``field``."""
    table: dict[str, type[BaseModel]] = {}
    for cls in _members(union):
        for value in typing.get_args(cls.model_fields[field].annotation):
            table[value] = cls
    return table


RESPONSE_EVENTS = _by_literal(ResponseStreamEvent, "type")
ASSISTANT_EVENTS = _by_literal(AssistantStreamEvent, "event")

# Route name -> the type of its JSON body (a list is a cursor page of that type).
JSON_BODIES: dict[str, Any] = {
    "conversations.create": Conversation,
    "conversations.retrieve": Conversation,
    "conversations.items.list": ConversationItemList,
    "conversations.items.create": ConversationItemList,
    "assistants.create": Assistant,
    "assistants.retrieve": Assistant,
    "assistants.update": Assistant,
    "assistants.list": [Assistant],
    "threads.create": Thread,
    "threads.retrieve": Thread,
    "messages.create": Message,
    "messages.list": [Message],
    "runs.list": [Run],
    "runs.retrieve": Run,
    "runs.cancel": Run,
}


def undeclared(value: Any, path: str = "$") -> list[str]:
    """Paths of the fields, anywhere in a parsed model, that its type does not declare."""
    if isinstance(value, BaseModel):
        found = [f"{path}.{key}" for key in value.model_extra or {}]
        for name in type(value).model_fields:
            found += undeclared(getattr(value, name), f"{path}.{name}")
        return found
    if isinstance(value, list):
        return [p for i, item in enumerate(value) for p in undeclared(item, f"{path}[{i}]")]
    if isinstance(value, dict):
        return [p for key, item in value.items() for p in undeclared(item, f"{path}.{key}")]
    return []


def check(kind: Any, payload: Any, label: str) -> list[str]:
    """Problems of ``payload`` read as ``kind`` (lax, as the SDK reads), prefixed by ``label``."""
    try:
        parsed = pydantic.TypeAdapter(kind).validate_python(payload, strict=False)
    except pydantic.ValidationError as error:
        return [f"{label}: {e['loc']}: {e['msg']}" for e in _relevant(error.errors())]
    return [f"{label}: undeclared field {path}" for path in undeclared(parsed)]


def _relevant(errors: list[Any]) -> list[Any]:
    """The errors, less those of union members whose ``type`` tag is not the payload's.

    The SDK's unions are not pydantic-discriminated, so a bad item gets an error
    from every member; only the members its tag names say what is wrong.
    """
    wrong_member = {
        tuple(e["loc"][:-1])
        for e in errors
        if e["type"] == "literal_error" and e["loc"][-1] == "type"
    }
    kept = [
        e
        for e in errors
        if not any(tuple(e["loc"][: len(m)]) == m for m in wrong_member if len(m) < len(e["loc"]))
        and not (e["type"] == "literal_error" and tuple(e["loc"][:-1]) in wrong_member)
    ]
    return kept or errors


def problems(request: RecordedRequest, reply: Reply) -> list[str]:
    """What in ``reply`` (sent to ``request``) the SDK's types say the real API would not send."""
    route = request.route or "no route"
    if isinstance(reply, RawReply):
        return [f"{route}: a raw body, not the API's JSON"]
    if isinstance(reply, JSONReply):
        return _json_problems(route, reply)
    found: list[str] = []
    for item in reply.items:
        if isinstance(item, SSEEvent):
            found += _event_problems(route, item)
    return found


def _json_problems(route: str, reply: JSONReply) -> list[str]:
    body = reply.body
    if reply.status >= 400:
        return _error_problems(f"{route} {reply.status}", body)
    kind = JSON_BODIES.get(route)
    if kind is None:
        return [f"{route}: no SDK type known for this route's body"]
    if not isinstance(kind, list):
        return check(kind, body, route)
    if not isinstance(body, Mapping) or set(body) != _PAGE_KEYS or body["object"] != "list":
        return [
            f"{route}: not a cursor page: {sorted(body) if isinstance(body, Mapping) else body}"
        ]
    return [p for i, item in enumerate(body["data"]) for p in check(kind[0], item, f"{route}[{i}]")]


def _error_problems(label: str, body: Any) -> list[str]:
    if not isinstance(body, Mapping) or set(body) != {"error"}:
        return [f"{label}: an error body is {{'error': {{...}}}}, got {body!r}"]
    return check(ErrorObject, body["error"], label)


def _event_problems(route: str, item: SSEEvent) -> list[str]:
    if route.startswith("runs."):
        return _assistants_event(route, item)
    if route == "responses.create":
        return _responses_event(route, item)
    if route == "chat.completions.create":
        return _chat_chunk(route, item)
    return [f"{route}: no SDK type known for this route's events"]


def _assistants_event(route: str, item: SSEEvent) -> list[str]:
    if item.event == "done":
        return [] if item.data == "[DONE]" else [f"{route}: done event with data {item.data!r}"]
    kind = ASSISTANT_EVENTS.get(item.event or "")
    if kind is None:
        return [f"{route}: unknown Assistants event {item.event!r}"]
    return check(kind, {"event": item.event, "data": item.data}, f"{route} {item.event}")


def _responses_event(route: str, item: SSEEvent) -> list[str]:
    name = item.data.get("type") if isinstance(item.data, Mapping) else None
    kind = RESPONSE_EVENTS.get(name or "")
    if kind is None:
        return [f"{route}: unknown Responses event type {name!r}"]
    if item.event != name:
        return [f"{route}: event name {item.event!r} is not the payload's type {name!r}"]
    return check(kind, item.data, f"{route} {name}")


def _chat_chunk(route: str, item: SSEEvent) -> list[str]:
    if item.event is not None:
        return [f"{route}: Chat Completions chunks have no event name, got {item.event!r}"]
    if isinstance(item.data, Mapping) and "error" in item.data:
        return _error_problems(f"{route} error chunk", item.data)
    return check(ChatCompletionChunk, item.data, route)
