"""Untrusted JSON arguments to the keyword arguments of a tool function.

Three steps, each raising ``ToolArgumentsError`` with a message that names the
tool and the path of the bad value (``days``, ``points[2].x``):

1. parse: at most ``MAX_ARGUMENTS_BYTES``, nesting at most ``MAX_DEPTH``,
   no duplicate keys, no NaN or Infinity, and the root must be an object;
2. check against the parameters' shapes: no unknown or missing keys, exact
   JSON types (a boolean is not an integer; an integer is a number), literal
   and enum values; null for a property with a default (or a ``NotRequired``
   key) means "use the default" and the key is dropped: always in strict mode,
   and outside it where the type does not admit None;
3. structure the checked data into the annotated types with the cattrs converter.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import cattrs

from assistant_service.adapters.tools.converter import converter
from assistant_service.adapters.tools.shapes import (
    Array,
    Choice,
    Dictionary,
    Field,
    FixedTuple,
    Nullable,
    Object,
    Scalar,
    Shape,
)
from assistant_service.adapters.tools.signature import FunctionShape
from assistant_service.domain.errors import ToolArgumentsError

MAX_ARGUMENTS_BYTES = 1_000_000
MAX_DEPTH = 32

_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "null": (type(None),),
}


class _BadValueError(Exception):
    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path or 'arguments'}: {problem}")


def bind_arguments(tool: str, function: FunctionShape, raw: str, *, strict: bool) -> dict[str, Any]:
    """The keyword arguments for ``function`` from the raw JSON ``raw``."""
    data = parse_arguments(tool, raw)
    try:
        checked = check(data, function.parameters, "", strict=strict)
    except _BadValueError as e:
        raise ToolArgumentsError(f"invalid arguments for {tool}: {e}") from None
    kwargs: dict[str, Any] = {}
    name = ""
    try:
        for name, value in checked.items():
            kwargs[name] = converter().structure(value, function.annotations[name])
    except Exception as e:  # noqa: BLE001 - validators of users' attrs classes may raise anything
        details = "; ".join(cattrs.transform_error(e, path=name))
        raise ToolArgumentsError(f"invalid arguments for {tool}: {details}") from None
    return kwargs


def parse_arguments(tool: str, raw: str) -> dict[str, Any]:
    """Parse the raw JSON; it must be an object within the size and depth bounds."""

    def bad(problem: str) -> ToolArgumentsError:
        return ToolArgumentsError(f"invalid arguments for {tool}: {problem}")

    if len(raw) > MAX_ARGUMENTS_BYTES or len(raw.encode("utf-8", "replace")) > MAX_ARGUMENTS_BYTES:
        raise bad(f"larger than {MAX_ARGUMENTS_BYTES} bytes")
    try:
        data = json.loads(
            raw or "{}", object_pairs_hook=_no_duplicates, parse_constant=_no_constant
        )
    except RecursionError:
        raise bad(f"nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as e:  # JSONDecodeError and ours
        raise bad(f"not valid JSON ({e})") from None
    if not isinstance(data, dict):
        raise bad(f"expected a JSON object, got {_kind(data)}")
    if _depth(data) > MAX_DEPTH:
        raise bad(f"nested deeper than {MAX_DEPTH} levels")
    return data


def check(value: Any, shape: Shape, path: str, *, strict: bool) -> Any:  # noqa: C901, PLR0911 - per shape
    """Check ``value`` against ``shape``; return it with nulls-for-defaults dropped."""
    match shape:
        case Scalar(kind=kind):
            if type(value) not in _JSON_TYPES[kind]:
                raise _BadValueError(path, f"expected {kind}, got {_kind(value)}")
            return value
        case Choice(values=values):
            if not any(type(value) is type(v) and value == v for v in values):
                allowed = ", ".join(json.dumps(v) for v in values)
                raise _BadValueError(path, f"expected one of {allowed}, got {_short(value)}")
            return value
        case Nullable(inner=inner):
            return None if value is None else check(value, inner, path, strict=strict)
        case Array(items=items):
            items_list = _expect_list(value, path)
            return [
                check(v, items, f"{path}[{i}]", strict=strict) for i, v in enumerate(items_list)
            ]
        case FixedTuple(items=items):
            items_list = _expect_list(value, path)
            if len(items_list) != len(items):
                raise _BadValueError(path, f"expected {len(items)} items, got {len(items_list)}")
            return [
                check(v, s, f"{path}[{i}]", strict=strict)
                for i, (v, s) in enumerate(zip(items_list, items, strict=True))
            ]
        case Dictionary(values=values):
            mapping = _expect_object(value, path)
            return {
                k: check(v, values, f"{path}[{k!r}]", strict=strict) for k, v in mapping.items()
            }
        case Object():
            return _check_object(_expect_object(value, path), shape, path, strict=strict)


def _check_object(
    value: Mapping[str, Any], shape: Object, path: str, *, strict: bool
) -> dict[str, Any]:
    known = {f.name for f in shape.fields}
    unknown = sorted(k for k in value if k not in known)
    if unknown:
        raise _BadValueError(path, f"unknown field(s) {', '.join(map(repr, unknown))}")
    out = {}
    for field in shape.fields:
        where = f"{path}.{field.name}" if path else field.name
        if field.name not in value or _means_default(value[field.name], field, strict=strict):
            if not field.optional:
                raise _BadValueError(where, "required field missing")
            continue  # the default applies
        out[field.name] = check(value[field.name], field.shape, where, strict=strict)
    return out


def _means_default(value: Any, field: Field, *, strict: bool) -> bool:
    # Strict schemas make optional properties required but nullable, so null
    # stands for "not given"; elsewhere only where null is not a valid value.
    return value is None and field.optional and (strict or not isinstance(field.shape, Nullable))


def _expect_list(value: Any, path: str) -> list[Any]:
    if not isinstance(value, list):
        raise _BadValueError(path, f"expected array, got {_kind(value)}")
    return value


def _expect_object(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _BadValueError(path, f"expected object, got {_kind(value)}")
    return value


def _kind(value: Any) -> str:
    kinds = {bool: "boolean", int: "integer", float: "number", str: "string", list: "array"}
    return kinds.get(type(value), "null" if value is None else "object")


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Python keeps the last of duplicate keys; a model sending two is refused instead.
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _depth(value: Any) -> int:
    """Nesting depth of parsed JSON, without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, level)
            if deepest > MAX_DEPTH:
                return deepest
            children = item.values() if isinstance(item, dict) else item
            stack.extend((c, level + 1) for c in children)
    return deepest
