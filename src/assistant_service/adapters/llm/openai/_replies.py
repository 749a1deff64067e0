"""Fields read off the upstream's replies, checked: a reply of the wrong shape fails the call cleanly.

The SDK builds its reply objects without validating them, so a server that
answers ``[]``, an HTML page or ``{"id": 5}`` with a 200 hands back objects
whose fields are missing or of any type (or a bare str). An id that a
conversation, a run or a tool call depends on must be a non-empty string, else
the call fails with :class:`~._calls.MalformedEventError` (a 502, and a fault for
the circuit breaker); a field only shown to people (a timestamp) falls back to
a default instead, so a conversation the server did create is not thrown away
over it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from datetime import datetime, timezone
from typing import Any

from assistant_service.adapters.llm.openai._calls import malformed

# What reading a reply of the wrong shape raises, inside the SDK or in our code.
SHAPE_ERRORS = (AttributeError, TypeError, KeyError, IndexError, ValueError)
_SCALARS = (str, bytes, int, float, bool, list, tuple)


def field(reply: Any, name: str) -> Any:
    """``reply``'s ``name`` (a dict's key or an SDK object's attribute); ``None`` when absent."""
    if isinstance(reply, Mapping):
        return reply.get(name)
    if reply is None or isinstance(reply, _SCALARS):
        return None
    return getattr(reply, name, None)


def text_field(reply: Any, name: str, *, backend: str, what: str) -> str:
    """``reply``'s ``name``, which must be a non-empty string; raises ``MalformedEventError``."""
    value = field(reply, name)
    if isinstance(value, str) and value:
        return value
    raise malformed(backend, what, f"no string {name!r}: got {type(value).__name__}")


def time_field(reply: Any, name: str) -> datetime:
    """``reply``'s ``name`` as a UTC time from Unix seconds; now when it is missing or odd."""
    value = field(reply, name)
    if isinstance(value, int | float) and not isinstance(value, bool):
        with contextlib.suppress(OverflowError, OSError, ValueError):
            return datetime.fromtimestamp(value, timezone.utc)
    return datetime.now(timezone.utc)


def plain(item: Any, *, backend: str, what: str) -> dict[str, Any]:
    """A listed item (an SDK object or a dict) as a plain dict; raises ``MalformedEventError``."""
    if isinstance(item, Mapping):
        return dict(item)
    to_dict = getattr(item, "to_dict", None)
    if item is None or isinstance(item, _SCALARS) or to_dict is None:
        raise malformed(backend, what, f"not an object: {type(item).__name__}")
    # warnings=False: a field of the wrong type is ours to judge, not pydantic's to print.
    dumped = to_dict(warnings=False)
    if not isinstance(dumped, dict):
        raise malformed(backend, what, f"not an object: {type(dumped).__name__}")
    return dumped


@contextlib.contextmanager
def reading(backend: str, what: str) -> Iterator[None]:
    """Turn the errors of reading a reply of the wrong shape into ``MalformedEventError``.

    Only around code that reads replies (the SDK's paging over a body that is no
    page, our walk over its items): elsewhere such an error is a bug to see.
    """
    try:
        yield
    except SHAPE_ERRORS as error:
        raise malformed(backend, what, f"{type(error).__name__}: {error}") from None
