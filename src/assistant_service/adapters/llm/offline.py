"""The offline demo model's behaviour: answer plainly, or call a tool the user names.

"What is the forecast? use get_forecast city=Paris days=2" calls
``weather.get_forecast`` with ``{"city": "Paris", "days": 2}``; the next step
reports what the tool returned. No network, no key, deterministic.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from assistant_service.adapters.llm.scripted import ScriptedModel, ScriptedStep, StepRequest
from assistant_service.adapters.state.memory import InMemoryStateStore
from assistant_service.domain.models import Message, Usage
from assistant_service.domain.steps import ToolResults
from assistant_service.domain.tools import ToolCall, ToolSpec
from assistant_service.ports.conversations import ConversationStore

_ASSIGNMENT = re.compile(r"""(\w+)=("[^"]*"|'[^']*'|\S+)""")
_MAX_CALLS = 3


def offline_model(store: ConversationStore | None = None) -> ScriptedModel:
    """The offline demo model: streams its replies and calls a tool the user names."""
    return ScriptedModel(store=store or InMemoryStateStore(), responder=offline_reply)


def offline_reply(request: StepRequest, _history: list[Message]) -> ScriptedStep:
    step = request.step
    if isinstance(step, ToolResults):
        lines = [f"{o.call.name} returned {o.output}" for o in step.outcomes]
        text = "Here is what I found: " + "; ".join(lines) + "."
        return ScriptedStep(
            text=text, usage=_usage(" ".join(o.output for o in step.outcomes), text)
        )
    calls = [
        ToolCall(
            f"call_{uuid.uuid4().hex[:12]}", spec.name, json.dumps(_arguments(spec, step.text))
        )
        for spec in _named_tools(request.tools, step.text)
    ]
    if calls:
        chosen = tuple(calls[:_MAX_CALLS])
        return ScriptedStep(
            tool_calls=chosen, usage=_usage(step.text, " ".join(c.arguments for c in chosen))
        )
    names = ", ".join(spec.name for spec in request.tools) or "none"
    text = (
        f"This is the offline model, so I can only echo you: {step.text!r}. "
        f"Name one of my tools ({names}) with key=value arguments and I will call it."
    )
    return ScriptedStep(text=text, usage=_usage(step.text, text))


def _usage(read: str, written: str) -> Usage:
    # Words stand in for tokens: the offline model has no tokenizer, but the
    # usage figures should move the way a real model's do.
    return Usage(input_tokens=len(read.split()), output_tokens=len(written.split()))


def _named_tools(tools: tuple[ToolSpec, ...], text: str) -> list[ToolSpec]:
    lowered = text.lower()
    return [
        spec
        for spec in tools
        if re.search(rf"\b{re.escape(spec.name.lower())}\b", lowered)
        or re.search(rf"\b{re.escape(spec.name.rsplit('.', 1)[-1].lower())}\b", lowered)
    ]


def _arguments(spec: ToolSpec, text: str) -> dict[str, Any]:
    properties = spec.parameters.get("properties", {})
    arguments: dict[str, Any] = {}
    for key, raw in _ASSIGNMENT.findall(text):
        if key in properties:
            arguments[key] = _value(raw)
    # A strict schema lists every parameter as required; optional ones accept null.
    for key in spec.parameters.get("required", []):
        if key not in arguments and _accepts_null(properties.get(key, {})):
            arguments[key] = None
    return arguments


def _value(raw: str) -> Any:
    if raw[:1] in {'"', "'"}:
        return raw[1:-1]
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def _accepts_null(schema: dict[str, Any]) -> bool:
    kinds = schema.get("type")
    if kinds == "null" or (isinstance(kinds, list) and "null" in kinds):
        return True
    return any(_accepts_null(option) for option in schema.get("anyOf", []))
