"""Tool specs in the function-tool shape that Chat Completions and the Assistants API share."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from assistant_service.adapters.tools.naming import from_wire_name, to_wire_name
from assistant_service.domain.tools import ToolCall, ToolSpec


def function_tools(specs: Sequence[ToolSpec]) -> list[dict[str, Any]]:
    """``{"type": "function", "function": {...}}`` for each spec, under its wire-safe name.

    OpenAI function names allow no dots, so ``weather.get_forecast`` is sent as
    ``weather__get_forecast`` and mapped back by :func:`tool_call`.
    """
    return [
        {
            "type": "function",
            "function": {
                "name": to_wire_name(spec.name),
                "description": spec.description,
                "parameters": dict(spec.parameters),
                "strict": spec.strict,
            },
        }
        for spec in specs
    ]


def tool_call(call_id: str, wire_name: str, arguments: str) -> ToolCall:
    """The model's call, under the tool's canonical (dotted) name."""
    return ToolCall(call_id, from_wire_name(wire_name), arguments)
