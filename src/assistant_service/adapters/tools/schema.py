"""Shapes to JSON schema, in OpenAI strict mode or in plain JSON Schema.

Strict mode (OpenAI structured outputs): every object has
``additionalProperties: false`` and lists every property in ``required``; a
property with a default becomes required but nullable, and the registry applies
the default when null arrives. Fixed-length tuples use ``prefixItems`` only
outside strict mode: strict mode does not accept it, so there a tuple is an
array of ``minItems == maxItems == n`` whose items are any of the item types,
its description gives the order, and the registry checks each position.
Open objects (``dict[str, X]``) are refused in strict mode when the shapes
are built, so a strict schema is always a closed one.
"""

from __future__ import annotations

import json
from typing import Any

from assistant_service.adapters.tools.converter import converter
from assistant_service.adapters.tools.shapes import (
    NO_DEFAULT,
    Array,
    Choice,
    Dictionary,
    FixedTuple,
    Nullable,
    Object,
    Scalar,
    Shape,
)

JSONSchema = dict[str, Any]
_PRIMITIVES = frozenset({"string", "integer", "number", "boolean"})


def parameters_schema(params: Object, *, strict: bool) -> JSONSchema:
    """The JSON schema of a tool's parameters: always an object at the root."""
    return _schema(params, strict=strict)


def _schema(shape: Shape, *, strict: bool) -> JSONSchema:
    match shape:
        case Scalar(kind=kind):
            out: JSONSchema = {"type": kind}
        case Choice(values=values):
            out = {"type": _types(values), "enum": list(values)}
        case Nullable(inner=inner):
            out = nullable(_schema(inner, strict=strict))
        case Array(items=items):
            out = {"type": "array", "items": _schema(items, strict=strict)}
        case FixedTuple(items=items):
            out = _tuple([_schema(i, strict=strict) for i in items], strict=strict)
        case Dictionary(values=values):
            out = {"type": "object", "additionalProperties": _schema(values, strict=strict)}
        case Object():
            out = _object(shape, strict=strict)
    if shape.description:
        out["description"] = _join(shape.description, out.get("description"))
    return out


def _object(shape: Object, *, strict: bool) -> JSONSchema:
    properties: JSONSchema = {}
    required: list[str] = []
    for field in shape.fields:
        prop = _schema(field.shape, strict=strict)
        default = _json_default(field.default)
        if field.optional and strict:
            prop = nullable(prop)
        if field.optional and default is not None:
            note = f"Default: {default}." if strict and default != "null" else None
            if not strict:
                prop["default"] = json.loads(default)
            prop = _describe(prop, note)
        prop = _describe(prop, field.description, first=True)
        properties[field.name] = prop
        if strict or not field.optional:
            required.append(field.name)
    return {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }


def _tuple(items: list[JSONSchema], *, strict: bool) -> JSONSchema:
    n = len(items)
    if not strict:
        return {"type": "array", "prefixItems": items, "items": False, "minItems": n, "maxItems": n}
    unique: list[JSONSchema] = []
    for item in items:
        if item not in unique:
            unique.append(item)
    order = ", ".join(f"{i + 1}: {_label(item)}" for i, item in enumerate(items))
    return {
        "type": "array",
        "items": unique[0] if len(unique) == 1 else {"anyOf": unique},
        "minItems": n,
        "maxItems": n,
        "description": f"Exactly {n} items, in this order: {order}.",
    }


def nullable(schema: JSONSchema) -> JSONSchema:
    """The schema that also accepts null (a type list for primitives, else ``anyOf``)."""
    kind = schema.get("type")
    kinds = kind if isinstance(kind, list) else [kind]
    if "null" in kinds or {"type": "null"} in schema.get("anyOf", []):
        return schema
    if set(kinds) <= _PRIMITIVES and "anyOf" not in schema:
        out = {**schema, "type": [*kinds, "null"]}
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
        return out
    described = {k: v for k, v in schema.items() if k == "description"}
    inner = {k: v for k, v in schema.items() if k != "description"}
    return {"anyOf": [inner, {"type": "null"}], **described}


def _types(values: tuple[Any, ...]) -> str | list[str]:
    names = []
    for v in values:
        name = "boolean" if isinstance(v, bool) else "integer" if isinstance(v, int) else "string"
        if name not in names:
            names.append(name)
    return names[0] if len(names) == 1 else names


def _label(schema: JSONSchema) -> str:
    kind = schema.get("type", "any of several types")
    return "/".join(kind) if isinstance(kind, list) else str(kind)


def _describe(schema: JSONSchema, text: str | None, *, first: bool = False) -> JSONSchema:
    if not text:
        return schema
    current = schema.get("description")
    joined = _join(text, current) if first else _join(current, text)
    return {**schema, "description": joined}


def _join(*parts: str | None) -> str:
    return " ".join(p for p in parts if p)


def _json_default(default: Any) -> str | None:
    """The default as JSON text, or None when there is none or it has no JSON form."""
    if default is NO_DEFAULT:
        return None
    try:
        return json.dumps(converter().unstructure(default), allow_nan=False)
    except (TypeError, ValueError):
        return None
