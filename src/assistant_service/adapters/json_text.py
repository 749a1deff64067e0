"""JSON on the hot path: orjson, with the standard library for what orjson refuses.

Every chat turn encodes a dozen or more JSON documents (its events for the run
log and for the client, the history items it stores, its log lines, the request
to the model), and reads the stored history back. orjson does each several times
faster than the ``json`` module; on bench/relay.py that is about 8 % of a
streamed turn's instructions.

The text is compact UTF-8. What orjson will not encode, the ``json`` module
encodes as before (integers past 64 bits, non-string keys, lone surrogates), so
a value JSON can hold is never refused here; values it cannot (a datetime, an
object) still raise ``TypeError``, as with ``json.dumps``.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

__all__ = ["dumps_bytes", "dumps_text", "loads"]

# Datetimes and dataclasses are not JSON to the json module: leave them to it, so
# they are refused alike whichever encoder is tried first.
_STRICT = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
_FALLBACK = json.JSONEncoder(separators=(",", ":")).encode


def dumps_bytes(value: Any) -> bytes:
    """``value`` as compact JSON bytes; ``TypeError``/``ValueError`` for what JSON cannot hold."""
    try:
        return orjson.dumps(value, option=_STRICT)
    except TypeError:
        return _FALLBACK(value).encode()


def dumps_text(value: Any) -> str:
    """:func:`dumps_bytes` as a ``str``."""
    return dumps_bytes(value).decode()


def loads(text: str | bytes) -> Any:
    """Parse JSON; ``ValueError`` for text that is not.

    orjson refuses what the ``json`` module reads (``NaN``, escaped lone
    surrogates); such text, written by an earlier version, is read by the latter.
    """
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)
