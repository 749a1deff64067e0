"""Tool names: canonical ``namespace.name`` inside, wire-safe ``namespace__name`` for OpenAI.

``ToolSpec.name`` and ``ToolCall.name`` always carry the canonical dotted
name. OpenAI function names allow only ``^[a-zA-Z0-9_-]{1,64}$``, so the
OpenAI adapters send ``to_wire_name(spec.name)`` and map what the model calls
back with ``from_wire_name``. The mapping is a bijection because a namespace
may not contain ``__`` nor end with ``_``: the first ``__`` of a wire name is
always the separator.
"""

from __future__ import annotations

import re

from assistant_service.domain.errors import ToolRegistrationError

MAX_WIRE_LENGTH = 64
SEPARATOR = "."
WIRE_SEPARATOR = "__"

_NAMESPACE = re.compile(r"[A-Za-z0-9-]+(?:_[A-Za-z0-9-]+)*")
_NAME = re.compile(r"[A-Za-z0-9_-]+")


def canonical_name(namespace: str, name: str) -> str:
    """``namespace.name``, after checking both parts and the wire length.

    Raises ``ToolRegistrationError`` naming the bad part.
    """
    if not _NAMESPACE.fullmatch(namespace):
        raise ToolRegistrationError(
            f"invalid tool namespace {namespace!r}: use letters, digits, '-' and single '_' "
            "(not leading, trailing or doubled)"
        )
    if not _NAME.fullmatch(name):
        raise ToolRegistrationError(f"invalid tool name {name!r}: use letters, digits, '_' and '-'")
    full = f"{namespace}{SEPARATOR}{name}"
    if len(to_wire_name(full)) > MAX_WIRE_LENGTH:
        raise ToolRegistrationError(
            f"tool name {full!r} is too long: "
            f"its wire form must be at most {MAX_WIRE_LENGTH} characters"
        )
    return full


def to_wire_name(name: str) -> str:
    """``weather.get_forecast`` -> ``weather__get_forecast``."""
    return name.replace(SEPARATOR, WIRE_SEPARATOR, 1)


def from_wire_name(wire_name: str) -> str:
    """``weather__get_forecast`` -> ``weather.get_forecast``; a name without ``__`` is kept."""
    return wire_name.replace(WIRE_SEPARATOR, SEPARATOR, 1)
