"""The one cattrs converter the tool adapter uses to structure arguments and unstructure results."""

from __future__ import annotations

from collections.abc import Set as AbstractSet
from functools import cache

import cattrs


@cache
def converter() -> cattrs.Converter:
    """The shared converter: forbids extra keys, turns sets into lists for JSON.

    Arguments are checked against their shapes before they reach it, so its
    lenient built-in hooks (``int("3")``) never see untrusted data unchecked.
    """
    return cattrs.Converter(
        forbid_extra_keys=True,
        unstruct_collection_overrides={AbstractSet: list},
    )
