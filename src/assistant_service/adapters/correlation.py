"""The correlation id of the request being served, as the HTTP layer bound it.

The HTTP middleware binds it in ``structlog.contextvars`` under ``correlation_id``;
adapters send it upstream and write it on their log lines. This is the one
reader of that binding.
"""

from __future__ import annotations

import structlog

CORRELATION_KEY = "correlation_id"
# The HTTP layer accepts at most 128 printable ASCII characters; upstream headers allow that too.
MAX_CORRELATION_ID = 128


def current_correlation_id() -> str | None:
    """The bound correlation id when it is 1 to 128 printable ASCII characters, else ``None``."""
    value = structlog.contextvars.get_contextvars().get(CORRELATION_KEY)
    if isinstance(value, str) and is_valid_correlation_id(value):
        return value
    return None


def is_valid_correlation_id(value: str) -> bool:
    """1 to 128 printable ASCII characters (so it is safe in headers and log lines)."""
    return 0 < len(value) <= MAX_CORRELATION_ID and all(" " <= char <= "~" for char in value)
