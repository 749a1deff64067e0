"""A tool's return value to the text the model reads; never raises.

A ``str`` passes through unchanged. Everything else, ``None`` included
(rendered ``null``), becomes JSON: attrs classes, dataclasses, enums, lists,
tuples, sets and dicts through the cattrs converter, anything else with
``str``. When even that fails, the value's ``repr`` (or a placeholder) is used.
"""

from __future__ import annotations

import json
from typing import Any

from assistant_service.adapters.tools.converter import converter


def render(value: Any) -> str:
    """The text for ``value``: itself if a ``str``, else JSON (``None`` -> ``"null"``)."""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(
            converter().unstructure(value), ensure_ascii=False, allow_nan=False, default=str
        )
    except Exception:  # noqa: BLE001 - rendering must never fail the call
        try:
            return repr(value)
        except Exception:  # noqa: BLE001
            return f"<unrenderable {type(value).__name__}>"
