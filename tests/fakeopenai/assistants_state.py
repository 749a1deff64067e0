"""The Assistants API's objects and rules, as a server that speaks it keeps them.

Threads, messages and runs live in memory. Each streamed run step (a run's
creation, or its continuation after tool outputs) plays the next scripted
:class:`RunStep`. The rules a real server enforces are enforced here too, so
the adapter is tested against them: no message while a run is active, tool
outputs only for a run that waits for them and only for the calls it made,
no cancelling an ended run.
"""

from __future__ import annotations

import itertools
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import attrs

ACTIVE = {"queued", "in_progress", "requires_action", "cancelling"}
_ids = itertools.count(1)


def new_id(prefix: str) -> str:
    return f"{prefix}_{next(_ids):06d}"


class ApiError(Exception):
    """An error answer: status, message, and extra headers."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


@attrs.frozen
class RunStep:
    """What the model does in one streamed step of a run.

    With ``calls`` ((id, wire name, arguments) each) the run stops in
    ``requires_action``; otherwise it ends in ``status`` (``completed``,
    ``failed``, ``expired``, ``cancelled``, ``incomplete``). The fault fields
    break the stream instead: an ``error`` event, a connection dropped or a
    non-JSON event after ``after`` events, or a ``delay`` before the first one.
    """

    text: str | None = None
    deltas: tuple[str, ...] | None = None
    calls: tuple[tuple[str, str, str], ...] = ()
    status: str = "completed"
    last_error: tuple[str, str] | None = None
    incomplete_reason: str | None = None
    usage: tuple[int, int] = (12, 7)
    error_event: str | None = None
    drop_after: int | None = None
    malformed_after: int | None = None
    delay: float = 0.0

    def pieces(self) -> tuple[str, ...]:
        if self.deltas is not None:
            return self.deltas
        return (self.text,) if self.text else ()


def reply(text: str, *, deltas: tuple[str, ...] | None = None, usage=(12, 7)) -> RunStep:
    return RunStep(text=text, deltas=deltas, usage=usage)


def call(name: str, arguments: str = "{}", call_id: str | None = None) -> tuple[str, str, str]:
    return (call_id or new_id("call"), name, arguments)


def calls(*tool_calls: tuple[str, str, str], text: str | None = None) -> RunStep:
    return RunStep(text=text, calls=tool_calls)


def ended(status: str, *, code: str = "server_error", message: str = "boom") -> RunStep:
    last_error = (code, message) if status == "failed" else None
    reason = "max_completion_tokens" if status == "incomplete" else None
    return RunStep(status=status, last_error=last_error, incomplete_reason=reason)


@attrs.define
class AssistantsState:
    """Threads, messages and runs, and the script of run steps to play."""

    # Remote assistants by id. A run names one; runs.create answers 404 for any other.
    assistants: dict[str, dict[str, Any]] = attrs.field(factory=dict)
    threads: dict[str, dict[str, Any]] = attrs.field(factory=dict)
    messages: dict[str, list[dict[str, Any]]] = attrs.field(factory=dict)
    runs: dict[str, list[dict[str, Any]]] = attrs.field(factory=dict)
    script: deque[RunStep] = attrs.field(factory=deque)
    # Played when the script is empty (benchmarks): a step, or a function of the
    # request ("create" or "submit") and the thread's last user text. Else a 500.
    default: RunStep | Callable[[str, str], RunStep] | None = None
    # How many retrieves a cancelled run stays "cancelling" before it is "cancelled".
    cancel_delay: int = 1
    _cancelling: dict[str, int] = attrs.field(factory=dict)

    def play(self, *steps: RunStep) -> None:
        self.script.extend(steps)

    def next_step(self, kind: str, thread_id: str) -> RunStep:
        if self.script:
            return self.script.popleft()
        if self.default is None:
            raise ApiError(500, "the fake server has no run step scripted")
        if isinstance(self.default, RunStep):
            return self.default
        users = [m for m in self.messages.get(thread_id, ()) if m["role"] == "user"]
        text = users[-1]["content"][0]["text"]["value"] if users else ""
        return self.default(kind, text)

    def create_assistant(self, body: dict[str, Any], assistant_id: str | None = None) -> dict:
        """An assistant as ``POST /v1/assistants`` makes it (``assistant_id`` to pick its id)."""
        if not isinstance(body.get("model"), str) or not body["model"]:
            raise ApiError(400, "Missing required parameter: 'model'.")
        assistant = assistant_object(assistant_id or new_id("asst"), body)
        self.assistants[assistant["id"]] = assistant
        return assistant

    def assistant(self, assistant_id: str) -> dict[str, Any]:
        if assistant_id not in self.assistants:
            raise ApiError(404, f"No assistant found with id '{assistant_id}'.")
        return self.assistants[assistant_id]

    def update_assistant(self, assistant_id: str, body: dict[str, Any]) -> dict[str, Any]:
        assistant = self.assistant(assistant_id)
        assistant.update({k: v for k, v in body.items() if k in _ASSISTANT_FIELDS})
        return assistant

    def thread(self, thread_id: str) -> dict[str, Any]:
        if thread_id not in self.threads:
            raise ApiError(404, f"No thread found with id '{thread_id}'.")
        return self.threads[thread_id]

    def create_thread(self, metadata: dict[str, str] | None) -> dict[str, Any]:
        thread = {
            "id": new_id("thread"),
            "object": "thread",
            "created_at": int(time.time()),
            "metadata": metadata or {},
            "tool_resources": None,
        }
        self.threads[thread["id"]] = thread
        self.messages[thread["id"]] = []
        self.runs[thread["id"]] = []
        return thread

    def active_run(self, thread_id: str) -> dict[str, Any] | None:
        return next((r for r in self.runs[thread_id] if r["status"] in ACTIVE), None)

    def add_message(self, thread_id: str, role: str, text: str, run_id: str | None = None) -> dict:
        self.thread(thread_id)
        active = self.active_run(thread_id)
        if role == "user" and active is not None:
            raise ApiError(
                400,
                f"Can't add messages to {thread_id} while a run {active['id']} is active.",
            )
        message = message_object(thread_id, role, text, run_id)
        self.messages[thread_id].append(message)
        return message

    def create_run(self, thread_id: str, body: dict[str, Any], **fields: Any) -> dict[str, Any]:
        self.thread(thread_id)
        self.assistant(body.get("assistant_id", ""))
        active = self.active_run(thread_id)
        if active is not None:
            raise ApiError(400, f"Thread {thread_id} already has an active run {active['id']}.")
        run = run_object(thread_id, body.get("assistant_id", "asst_unknown"), **fields)
        self.runs[thread_id].append(run)
        return run

    def run(self, thread_id: str, run_id: str) -> dict[str, Any]:
        self.thread(thread_id)
        for run in self.runs[thread_id]:
            if run["id"] == run_id:
                return run
        raise ApiError(404, f"No run found with id '{run_id}'.")

    def retrieve_run(self, thread_id: str, run_id: str) -> dict[str, Any]:
        run = self.run(thread_id, run_id)
        if run["status"] == "cancelling":
            self._cancelling[run_id] = self._cancelling.get(run_id, 0) + 1
            if self._cancelling[run_id] >= self.cancel_delay:
                run.update(status="cancelled", cancelled_at=int(time.time()), required_action=None)
        return run

    def cancel_run(self, thread_id: str, run_id: str) -> dict[str, Any]:
        run = self.run(thread_id, run_id)
        if run["status"] not in ACTIVE:
            raise ApiError(400, f"Cannot cancel run with status '{run['status']}'.")
        run["status"] = "cancelling"
        return run

    def check_outputs(self, run: dict[str, Any], outputs: list[dict[str, Any]]) -> None:
        if run["status"] != "requires_action":
            raise ApiError(
                400,
                f'Runs in status "{run["status"]}" do not accept tool outputs.',
            )
        wanted = {c["id"] for c in run["required_action"]["submit_tool_outputs"]["tool_calls"]}
        given = {o.get("tool_call_id") for o in outputs}
        if given != wanted:
            raise ApiError(
                400,
                f"Expected tool outputs for call_ids {sorted(wanted)}, got {sorted(given)}.",
            )


_ASSISTANT_FIELDS = frozenset(
    {"model", "name", "description", "instructions", "tools", "metadata", "temperature", "top_p"}
)


def assistant_object(assistant_id: str, body: dict[str, Any]) -> dict[str, Any]:
    assistant = {
        "id": assistant_id,
        "object": "assistant",
        "created_at": int(time.time()),
        "name": None,
        "description": None,
        "model": "",
        "instructions": None,
        "tools": [],
        "metadata": {},
        "temperature": 1.0,
        "top_p": 1.0,
        "response_format": "auto",
        "tool_resources": {},
    }
    assistant.update({k: v for k, v in body.items() if k in _ASSISTANT_FIELDS})
    return assistant


def message_object(thread_id: str, role: str, text: str, run_id: str | None) -> dict[str, Any]:
    return {
        "id": new_id("msg"),
        "object": "thread.message",
        "created_at": int(time.time()),
        "thread_id": thread_id,
        "role": role,
        "status": "completed",
        "assistant_id": None,
        "run_id": run_id,
        "attachments": [],
        "metadata": {},
        "content": [{"type": "text", "text": {"value": text, "annotations": []}}],
    }


def run_object(thread_id: str, assistant_id: str, **fields: Any) -> dict[str, Any]:
    run = {
        "id": new_id("run"),
        "object": "thread.run",
        "created_at": int(time.time()),
        "thread_id": thread_id,
        "assistant_id": assistant_id,
        "status": "queued",
        "required_action": None,
        "last_error": None,
        "expires_at": None,
        "started_at": None,
        "cancelled_at": None,
        "failed_at": None,
        "completed_at": None,
        "incomplete_details": None,
        "model": "fake-model",
        "instructions": "",
        "tools": [],
        "metadata": {},
        "usage": None,
        "temperature": None,
        "top_p": None,
        "max_prompt_tokens": None,
        "max_completion_tokens": None,
        "truncation_strategy": {"type": "auto", "last_messages": None},
        "response_format": "auto",
        "tool_choice": "auto",
        "parallel_tool_calls": True,
    }
    run.update(fields)
    return run
