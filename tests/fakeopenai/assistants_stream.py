"""The events of one streamed Assistants-API run step, as a server sends them."""

from __future__ import annotations

import time
from typing import Any

from fakeopenai.assistants_state import AssistantsState, RunStep, message_object, new_id
from fakeopenai.server import Drop, Pause, Raw, SSEEvent, SSEItem

DONE = SSEEvent("[DONE]", event="done")


def run_step_items(
    state: AssistantsState, run: dict[str, Any], step: RunStep
) -> tuple[SSEItem, ...]:
    """The SSE items of one step of ``run``; the thread's state follows what is sent.

    A step cut short (dropped, malformed) leaves the run ``in_progress`` and no
    assistant message, as a server whose client went away leaves it.
    """
    planned = _planned(run, step)
    cut = step.drop_after if step.drop_after is not None else step.malformed_after
    if cut is not None:
        planned = planned[:cut]
    items: list[SSEItem] = [Pause(step.delay)] if step.delay else []
    for name, data, effect in planned:
        items.append(SSEEvent(data if effect is None else effect(state, run), event=name))
    if step.drop_after is not None:
        items.append(Drop())
    elif step.malformed_after is not None:
        items.append(Raw(b"event: thread.message.delta\ndata: {not json\n\n"))
    else:
        items.append(DONE)
    return tuple(items)


Planned = tuple[str, Any, Any]  # event name, data, or an effect (state, run) -> data


def _planned(run: dict[str, Any], step: RunStep) -> list[Planned]:
    planned: list[Planned] = []
    if run["status"] == "queued":
        planned.append(("thread.run.created", dict(run), None))
    run.update(status="queued", required_action=None)
    planned.append(("thread.run.queued", dict(run), None))
    run.update(status="in_progress", started_at=int(time.time()))
    planned.append(("thread.run.in_progress", dict(run), None))
    message = None
    if step.text is not None or step.deltas:
        text = step.text if step.text is not None else "".join(step.pieces())
        message = message_object(run["thread_id"], "assistant", text, run["id"])
    planned.append(("thread.run.step.created", _run_step(run, step, message), None))
    if message is not None:
        planned.extend(_message(run, step, message))
    if step.error_event is not None:
        error = {
            "code": "server_error",
            "message": step.error_event,
            "param": None,
            "type": "server_error",
        }
        planned.append(("error", error, None))
        _end(run, "failed", {"last_error": {"code": "server_error", "message": step.error_event}})
        return planned
    status, fields = _end_fields(step)
    planned.append((f"thread.run.{status}", None, lambda _state, r: _end(r, status, fields)))
    return planned


def _run_step(run: dict[str, Any], step: RunStep, message: dict[str, Any] | None) -> dict[str, Any]:
    """The run step (a full ``thread.run.step`` object) that writes the message or makes the calls."""
    if message is None and step.calls:
        tool_calls = [
            {"id": i, "type": "function", "function": {"name": n, "arguments": a, "output": None}}
            for i, n, a in step.calls
        ]
        kind, details = "tool_calls", {"type": "tool_calls", "tool_calls": tool_calls}
    else:
        message_id = message["id"] if message is not None else new_id("msg")
        details = {"type": "message_creation", "message_creation": {"message_id": message_id}}
        kind = "message_creation"
    return {
        "id": new_id("step"),
        "object": "thread.run.step",
        "created_at": int(time.time()),
        "assistant_id": run["assistant_id"],
        "thread_id": run["thread_id"],
        "run_id": run["id"],
        "type": kind,
        "status": "in_progress",
        "step_details": details,
        "last_error": None,
        "expired_at": None,
        "cancelled_at": None,
        "failed_at": None,
        "completed_at": None,
        "metadata": {},
        "usage": None,
    }


def _message(run: dict[str, Any], step: RunStep, message: dict[str, Any]) -> list[Planned]:
    started = {**message, "status": "in_progress", "content": []}
    planned: list[Planned] = [
        ("thread.message.created", started, None),
        ("thread.message.in_progress", started, None),
    ]
    for piece in step.pieces():
        delta = {"content": [{"index": 0, "type": "text", "text": {"value": piece}}]}
        data = {"id": message["id"], "object": "thread.message.delta", "delta": delta}
        planned.append(("thread.message.delta", data, None))

    def store(state: AssistantsState, _run: dict[str, Any]) -> dict[str, Any]:
        state.messages[run["thread_id"]].append(message)  # it joins the thread once completed
        return message

    planned.append(("thread.message.completed", None, store))
    return planned


def _end_fields(step: RunStep) -> tuple[str, dict[str, Any]]:
    now = int(time.time())
    if step.calls:
        tool_calls = [
            {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}
            for call_id, name, arguments in step.calls
        ]
        required = {
            "type": "submit_tool_outputs",
            "submit_tool_outputs": {"tool_calls": tool_calls},
        }
        return "requires_action", {"required_action": required}
    if step.status == "completed":
        prompt, completion = step.usage
        usage = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }
        return "completed", {"completed_at": now, "usage": usage}
    if step.status == "failed":
        code, message = step.last_error or ("server_error", "boom")
        return "failed", {"failed_at": now, "last_error": {"code": code, "message": message}}
    if step.status == "incomplete":
        return "incomplete", {"incomplete_details": {"reason": step.incomplete_reason}}
    return step.status, {"cancelled_at": now} if step.status == "cancelled" else {}


def _end(run: dict[str, Any], status: str, fields: dict[str, Any]) -> dict[str, Any]:
    run.update({"required_action": None, **fields}, status=status)
    return dict(run)
