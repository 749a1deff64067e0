"""Pages of a conversation's history, and the opaque cursor that continues a walk.

A cursor is ``v1:<offset>`` in unpadded URL-safe base64, where ``offset`` is the
index, in the oldest-first history, of the first message of the next page. The
version prefix leaves room for another encoding later; clients treat it as opaque.
Only the exact strings :func:`encode_cursor` makes are accepted.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence

from assistant_service.domain.errors import InvalidInputError
from assistant_service.domain.models import HistoryPage, Message

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100

_CURSOR = re.compile(r"v1:([1-9][0-9]{0,17})")
# base64 of "v1:" plus at most 18 digits is at most 28 characters.
_MAX_CURSOR_LENGTH = 28
_TOKEN = re.compile(rf"[A-Za-z0-9_-]{{4,{_MAX_CURSOR_LENGTH}}}")
_BAD_CURSOR = "must be the next_cursor of a previous page"


def encode_cursor(offset: int) -> str:
    """The cursor of the page that starts at ``offset`` (a positive index)."""
    return base64.urlsafe_b64encode(f"v1:{offset}".encode("ascii")).rstrip(b"=").decode("ascii")


def decode_cursor(cursor: str) -> int:
    """The offset ``cursor`` stands for.

    Raises ``InvalidInputError`` naming ``cursor`` for anything :func:`encode_cursor`
    did not make: wrong characters, padding, another version, a zero or signed offset.
    """
    if _TOKEN.fullmatch(cursor):
        padded = cursor + "=" * (-len(cursor) % 4)
        try:
            text = base64.urlsafe_b64decode(padded).decode("ascii")
        except (binascii.Error, UnicodeDecodeError):
            text = ""
        match = _CURSOR.fullmatch(text)
        # The round trip refuses the other spellings of the same bytes (stray low bits).
        if match and encode_cursor(int(match.group(1))) == cursor:
            return int(match.group(1))
    raise InvalidInputError("invalid cursor", {"cursor": _BAD_CURSOR})


def check_limit(limit: int) -> None:
    """Raise ``InvalidInputError`` naming ``limit`` unless it is 1 to ``MAX_PAGE_SIZE``."""
    # Untyped callers exist; and bool is an int subclass, but True is no page size.
    if type(limit) is not int or not 1 <= limit <= MAX_PAGE_SIZE:
        raise InvalidInputError(
            "invalid page size",
            {"limit": f"must be an integer from 1 to {MAX_PAGE_SIZE}, got {limit!r}"},
        )


def page_of(messages: Sequence[Message], *, limit: int, offset: int = 0) -> HistoryPage:
    """The ``limit`` messages from ``offset`` on, with the cursor of the rest, if any.

    Raises ``InvalidInputError`` naming ``cursor`` when ``offset`` lies past the end
    (a cursor this history never issued).
    """
    if offset > len(messages):
        raise InvalidInputError("invalid cursor", {"cursor": _BAD_CURSOR})
    end = offset + limit
    return HistoryPage(
        messages=tuple(messages[offset:end]),
        next_cursor=encode_cursor(end) if end < len(messages) else None,
    )
