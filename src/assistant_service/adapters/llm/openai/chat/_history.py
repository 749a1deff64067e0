"""Chat Completions history: stored chat messages, repaired and trimmed into a valid request.

Items are chat messages in the wire format (``{"role": "user", "content": ...}``,
assistant messages with ``tool_calls``, ``tool`` replies). A store may drop its
oldest items and a run may die between a tool call and its reply, so the
stored list is not always a valid request: :func:`request_messages` makes it one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from assistant_service.domain.models import Message, Role
from assistant_service.domain.tools import INTERRUPTED_OUTPUT

Item = Mapping[str, Any]


def user_message(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


def tool_reply(call_id: str, output: str) -> dict[str, Any]:
    return {"role": "tool", "tool_call_id": call_id, "content": output}


def interrupted_replies(call_ids: Iterable[str]) -> list[dict[str, Any]]:
    """Replies for calls whose run ended before they finished, so the model learns why."""
    return [tool_reply(call_id, INTERRUPTED_OUTPUT) for call_id in call_ids]


def call_ids(item: Item) -> list[str]:
    """The ids of an assistant message's tool calls (none for any other item)."""
    if item.get("role") != "assistant":
        return []
    return [str(call.get("id")) for call in item.get("tool_calls") or ()]


def pending_calls(items: Sequence[Item]) -> list[str]:
    """Calls of the last assistant message still waiting for a tool reply, in call order."""
    for position in range(len(items) - 1, -1, -1):
        item = items[position]
        if item.get("role") == "tool":
            continue
        answered = {reply.get("tool_call_id") for reply in items[position + 1 :]}
        return [call_id for call_id in call_ids(item) if call_id not in answered]
    return []


def request_messages(items: Iterable[Item]) -> list[dict[str, Any]]:
    """``items`` as a list the server accepts.

    The list starts at the first user message (what precedes it lost its
    context when the store dropped older items); a ``tool`` reply is kept only
    right after the assistant message that made the call, once; a call left
    without a reply gets an interrupted reply before the next message.
    """
    messages: list[dict[str, Any]] = []
    waiting: list[str] = []  # calls of the latest assistant message not answered yet
    started = False
    for item in items:
        role = item.get("role")
        started = started or role == "user"
        if not started:
            continue
        if role == "tool":
            if item.get("tool_call_id") in waiting:
                waiting.remove(item["tool_call_id"])
                messages.append(dict(item))
            continue
        messages.extend(interrupted_replies(waiting))
        messages.append(dict(item))
        waiting = call_ids(item)
    messages.extend(interrupted_replies(waiting))
    return messages


def history_messages(items: Iterable[Item]) -> list[Message]:
    """The user and assistant messages that carry text, oldest first."""
    messages = []
    for item in items:
        role, content = item.get("role"), item.get("content")
        if role in {"user", "assistant"} and isinstance(content, str) and content:
            messages.append(Message(Role(role), content))
    return messages
