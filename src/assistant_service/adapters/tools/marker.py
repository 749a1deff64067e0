"""The ``@tool`` decorator: marks a function for ``register_module``, changes nothing else."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, overload

import attrs

F = TypeVar("F", bound=Callable[..., Any])

_ATTRIBUTE = "__assistant_service_tool__"


@attrs.frozen
class ToolMark:
    """What ``@tool(...)`` said: each ``None`` falls back to the registry's choice."""

    name: str | None = None
    namespace: str | None = None
    strict: bool = True
    requires_approval: bool = False


@overload
def tool(fn: F, /) -> F: ...
@overload
def tool(
    *,
    name: str | None = None,
    namespace: str | None = None,
    strict: bool = True,
    requires_approval: bool = False,
) -> Callable[[F], F]: ...
def tool(
    fn: F | None = None,
    /,
    *,
    name: str | None = None,
    namespace: str | None = None,
    strict: bool = True,
    requires_approval: bool = False,
) -> F | Callable[[F], F]:
    """Mark ``fn`` as a tool; usable bare (``@tool``) or with options (``@tool(name=...)``).

    The function is returned unchanged, so it stays callable and testable; the
    registry checks it only when it registers it. With ``requires_approval``,
    the model's call never runs on its own: the run stops until a person
    approves or denies it.
    """
    mark = ToolMark(
        name=name, namespace=namespace, strict=strict, requires_approval=requires_approval
    )

    def decorate(f: F) -> F:
        setattr(f, _ATTRIBUTE, mark)
        return f

    return decorate if fn is None else decorate(fn)


def mark_of(obj: object) -> ToolMark | None:
    """The mark ``@tool`` left on ``obj``, if any."""
    mark = getattr(obj, _ATTRIBUTE, None)
    return mark if isinstance(mark, ToolMark) else None
