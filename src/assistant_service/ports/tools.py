"""The tool-registry port."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from assistant_service.domain.tools import BoundTool, ToolCall, ToolSpec


class ToolRegistry(Protocol):
    """The tools an assistant may use, and how to bind a call to one.

    The registry checks and converts arguments; the run loop runs the bound
    tool (timeouts, worker threads) and enforces the assistant's allowed list.
    """

    def specs(self, names: Sequence[str]) -> list[ToolSpec]:
        """The specs of the named tools, in order; ``NotFoundError`` for an unknown name."""
        ...

    def bind(self, call: ToolCall) -> BoundTool:
        """Check ``call.arguments`` against the tool and bind them.

        Raises ``NotFoundError`` for an unknown tool and ``ToolArgumentsError``
        for arguments that are not JSON or do not match the schema.
        """
        ...
