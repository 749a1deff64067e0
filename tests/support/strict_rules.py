"""OpenAI's strict-mode rules for function parameter schemas, as a checker for tests."""

from __future__ import annotations

from typing import Any

# Keywords OpenAI structured outputs accept in strict mode.
STRICT_KEYWORDS = frozenset(
    {
        "type", "properties", "required", "additionalProperties", "items", "anyOf",
        "enum", "const", "description", "minItems", "maxItems", "pattern", "format",
        "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf",
        "$ref", "$defs",
    }
)  # fmt: skip
JSON_TYPES = frozenset({"string", "integer", "number", "boolean", "null", "object", "array"})


def check_strict(schema: dict[str, Any]) -> None:
    """Assert ``schema`` follows OpenAI's strict-mode rules for function parameters."""
    assert schema.get("type") == "object", "the root must be an object"
    assert "anyOf" not in schema, "the root must not be anyOf"
    _check_node(schema, "$")


def _check_node(node: Any, path: str) -> None:
    assert isinstance(node, dict), f"{path}: a schema must be an object"
    unknown = set(node) - STRICT_KEYWORDS
    assert not unknown, f"{path}: keywords not supported in strict mode: {unknown}"
    kinds = node.get("type", [])
    kinds = kinds if isinstance(kinds, list) else [kinds]
    assert set(kinds) <= JSON_TYPES, path
    assert "type" in node or "anyOf" in node or "$ref" in node, f"{path}: untyped"
    if "object" in kinds:
        assert node.get("additionalProperties") is False, f"{path}: open object"
        props = node.get("properties", {})
        assert sorted(node.get("required", [])) == sorted(props), f"{path}: all required"
        for name, prop in props.items():
            _check_node(prop, f"{path}.{name}")
    else:
        assert "additionalProperties" not in node, path
    if "array" in kinds:
        _check_node(node["items"], f"{path}[]")
    for i, option in enumerate(node.get("anyOf", [])):
        _check_node(option, f"{path}|{i}")
