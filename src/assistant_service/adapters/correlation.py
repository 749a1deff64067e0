"""The correlation id of the request being served, as the HTTP layer bound it.

The HTTP middleware binds it with :func:`bound_correlation_id`: in
``structlog.contextvars`` under ``correlation_id`` (every log line carries it)
and in a context variable of its own, which :func:`current_correlation_id`
reads without walking the whole context (adapters read it several times per
turn: for upstream headers, spans and log lines). An application that binds
``correlation_id`` in structlog's context itself is read too.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar

import structlog

CORRELATION_KEY = "correlation_id"
# The HTTP layer accepts at most 128 printable ASCII characters; upstream headers allow that too.
MAX_CORRELATION_ID = 128

_BOUND: ContextVar[str | None] = ContextVar("assistant_service_correlation_id", default=None)


@contextlib.contextmanager
def bound_correlation_id(correlation_id: str) -> Iterator[None]:
    """Bind ``correlation_id`` for the block: on log lines and for :func:`current_correlation_id`."""
    token = _BOUND.set(correlation_id)
    try:
        with structlog.contextvars.bound_contextvars(**{CORRELATION_KEY: correlation_id}):
            yield
    finally:
        _BOUND.reset(token)


def current_correlation_id() -> str | None:
    """The bound correlation id when it is 1 to 128 printable ASCII characters, else ``None``."""
    value = _BOUND.get()
    if value is None:
        value = structlog.contextvars.get_contextvars().get(CORRELATION_KEY)
    if isinstance(value, str) and is_valid_correlation_id(value):
        return value
    return None


def is_valid_correlation_id(value: str) -> bool:
    """1 to 128 printable ASCII characters (so it is safe in headers and log lines)."""
    return 0 < len(value) <= MAX_CORRELATION_ID and value.isascii() and value.isprintable()
