"""Tool specs in OpenAI's function-tool shapes: the Responses API's, and the one
Chat Completions and the Assistants API share. No openai import: the CLI uses it too."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs

from assistant_service.adapters.tools.naming import from_wire_name, to_wire_name
from assistant_service.domain.tools import ToolCall, ToolSpec


def responses_tool(spec: ToolSpec) -> dict[str, Any]:
    """``spec`` as a Responses-API ``function`` tool, under its wire-safe name."""
    return {
        "type": "function",
        "name": to_wire_name(spec.name),
        "description": spec.description,
        "parameters": dict(spec.parameters),
        "strict": spec.strict,
    }


def function_tools(specs: Sequence[ToolSpec]) -> list[dict[str, Any]]:
    """``{"type": "function", "function": {...}}`` for each spec, under its wire-safe name.

    OpenAI function names allow no dots, so ``weather.get_forecast`` is sent as
    ``weather__get_forecast`` and mapped back by :func:`tool_call`.
    """
    nested = []
    for spec in specs:
        function = responses_tool(spec)
        del function["type"]
        nested.append({"type": "function", "function": function})
    return nested


def tool_call(call_id: str, wire_name: str, arguments: str) -> ToolCall:
    """The model's call, under the tool's canonical (dotted) name."""
    return ToolCall(call_id, from_wire_name(wire_name), arguments)


@attrs.define
class PartialCall:
    """A function call that streams in: its id and name may come late, its arguments in pieces.

    ``whole`` holds the complete arguments when the server also sends them at once
    (Responses' ``function_call_arguments.done``); they win over the pieces.
    """

    call_id: str = ""
    name: str = ""
    pieces: list[str] = attrs.field(factory=list)
    length: int = 0
    whole: str | None = None

    def add(self, piece: str) -> None:
        self.pieces.append(piece)
        self.length += len(piece)

    def arguments(self) -> str:
        """The call's raw JSON arguments; ``{}`` when none came."""
        return self.whole or "".join(self.pieces) or "{}"
