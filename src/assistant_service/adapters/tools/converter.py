"""The one cattrs converter the tool adapter uses to structure arguments and unstructure results."""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Set as AbstractSet
from functools import cache
from typing import Any

import cattrs
import typing_extensions
from typing_extensions import is_typeddict


@cache
def converter() -> cattrs.Converter:
    """The shared converter: forbids extra keys, turns sets into lists for JSON.

    Arguments are checked against their shapes before they reach it, so its
    lenient built-in hooks (``int("3")``) never see untrusted data unchecked.
    """
    conv = cattrs.Converter(
        forbid_extra_keys=True,
        unstruct_collection_overrides={AbstractSet: list},
    )
    conv.register_structure_hook_factory(is_typeddict, _typeddict_hook)
    return conv


def _typeddict_hook(cls: type, conv: cattrs.Converter) -> Callable[[Any, Any], dict[str, Any]]:
    # cattrs reads required keys from __required_keys__, which misses
    # NotRequired under string annotations (3.10, 3.11); the keys were
    # checked already, so structure the values present.
    hints = typing_extensions.get_type_hints(cls)

    def structure(value: Any, _: Any) -> dict[str, Any]:
        return {key: conv.structure(item, hints[key]) for key, item in value.items()}

    return structure
