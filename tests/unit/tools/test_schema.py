"""Schemas from signatures, type hints and docstrings; refusals at registration."""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Annotated, Any, Literal, Optional

import attrs
import pytest
from typing_extensions import NotRequired, Required, TypedDict

from assistant_service.adapters.tools import FunctionToolRegistry
from assistant_service.domain.errors import ToolRegistrationError


class Color(str, enum.Enum):
    RED = "red"
    BLUE = "blue"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


@attrs.frozen
class Point:
    """A point on the plane.

    Attributes:
        x: Horizontal.
        y: Vertical.
    """

    x: float
    y: float = 0.0


class Movie(TypedDict):
    title: str
    year: NotRequired[int]


class Loose(TypedDict, total=False):
    tag: str
    must: Required[Annotated[int, "needed"]]


def schema_of(registry: FunctionToolRegistry, fn: Callable[..., Any], **kw: Any) -> dict[str, Any]:
    return dict(registry.register(fn, namespace="t", **kw).parameters)


def param(registry: FunctionToolRegistry, annotation: Any, *, strict: bool = True) -> Any:
    def fn(value: Any) -> None: ...

    fn.__annotations__ = {"value": annotation}
    return schema_of(FunctionToolRegistry(), fn, strict=strict)["properties"]["value"]


@pytest.mark.parametrize(
    ("annotation", "expected"),
    [
        (str, {"type": "string"}),
        (int, {"type": "integer"}),
        (float, {"type": "number"}),
        (bool, {"type": "boolean"}),
        (None, {"type": "null"}),
        (Optional[int], {"type": ["integer", "null"]}),  # noqa: UP045 - the old spelling works too
        (int | None, {"type": ["integer", "null"]}),
        (Literal["a", "b"], {"type": "string", "enum": ["a", "b"]}),
        (Literal[1, "a", True], {"type": ["integer", "string", "boolean"], "enum": [1, "a", True]}),
        (Literal["a"] | None, {"type": ["string", "null"], "enum": ["a", None]}),
        (Literal[None], {"type": "null"}),
        (Color, {"type": "string", "enum": ["red", "blue"]}),
        (Level, {"type": "integer", "enum": [1, 2]}),
        (list[int], {"type": "array", "items": {"type": "integer"}}),
        (tuple[str, ...], {"type": "array", "items": {"type": "string"}}),
    ],
)
def test_types(registry, annotation, expected):
    assert param(registry, annotation) == expected


def test_annotated_description(registry):
    assert param(registry, Annotated[int, "How many.", 3]) == {
        "type": "integer",
        "description": "How many.",
    }


def test_fixed_tuple_strict(registry, strict_rules):
    schema = param(registry, tuple[int, str, int])
    assert schema["items"] == {"anyOf": [{"type": "integer"}, {"type": "string"}]}
    assert schema["minItems"] == schema["maxItems"] == 3
    assert "1: integer, 2: string, 3: integer" in schema["description"]
    assert param(registry, tuple[int, int])["items"] == {"type": "integer"}


def test_fixed_tuple_non_strict(registry):
    assert param(registry, tuple[int, str], strict=False) == {
        "type": "array",
        "prefixItems": [{"type": "integer"}, {"type": "string"}],
        "items": False,
        "minItems": 2,
        "maxItems": 2,
    }


def test_dict_only_outside_strict_mode(registry):
    assert param(registry, dict[str, int], strict=False) == {
        "type": "object",
        "additionalProperties": {"type": "integer"},
    }
    with pytest.raises(ToolRegistrationError, match=r"fn.*'value'.*strict=False"):
        param(registry, dict[str, int])


def test_attrs_class(registry, strict_rules):
    schema = param(registry, Point)
    assert schema == {
        "type": "object",
        "description": "A point on the plane.",
        "properties": {
            "x": {"type": "number", "description": "Horizontal."},
            "y": {"type": ["number", "null"], "description": "Vertical. Default: 0.0."},
        },
        "required": ["x", "y"],
        "additionalProperties": False,
    }
    loose = param(registry, Point, strict=False)
    assert loose["required"] == ["x"]
    assert loose["properties"]["y"] == {
        "type": "number",
        "default": 0.0,
        "description": "Vertical.",
    }


def test_typeddicts(registry):
    movie = param(registry, Movie)
    assert movie["required"] == ["title", "year"]
    assert movie["properties"]["year"] == {"type": ["integer", "null"]}
    assert param(registry, Movie, strict=False)["required"] == ["title"]
    assert param(registry, Loose, strict=False)["required"] == ["must"]


def test_nested_objects_are_nullable_with_anyof(registry, strict_rules):
    def fn(points: list[Point], where: Point | None = None) -> None: ...

    schema = schema_of(registry, fn)
    strict_rules(schema)
    assert schema["properties"]["where"]["anyOf"][1] == {"type": "null"}
    assert schema["properties"]["points"]["items"]["type"] == "object"


def test_strict_optional_parameters(registry, strict_rules):
    def fn(a: int, b: str = "x", c: Color = Color.RED, d: list[int] | None = None) -> None: ...

    schema = schema_of(registry, fn)
    strict_rules(schema)
    props = schema["properties"]
    assert schema["required"] == ["a", "b", "c", "d"]
    assert props["b"] == {"type": ["string", "null"], "description": 'Default: "x".'}
    assert props["c"]["enum"] == ["red", "blue", None]
    assert props["c"]["description"] == 'Default: "red".'
    assert props["d"] == {
        "anyOf": [{"type": "array", "items": {"type": "integer"}}, {"type": "null"}]
    }


def test_non_strict_optional_parameters(registry):
    def g(a: int, b: str = "x", when: int | None = None) -> None: ...

    schema = schema_of(registry, g, strict=False)
    assert schema["required"] == ["a"]
    assert schema["properties"]["b"] == {"type": "string", "default": "x"}
    assert schema["properties"]["when"] == {"type": ["integer", "null"], "default": None}


def test_default_without_json_form_is_not_shown(registry):
    sentinel = object()

    def fn(a: int = sentinel) -> None:  # type: ignore[assignment]
        ...

    assert schema_of(registry, fn, strict=False)["properties"]["a"] == {"type": "integer"}


def test_attrs_factory_default_is_optional(registry):
    @attrs.define
    class Bag:
        items: list[int] = attrs.field(factory=list)
        hidden: int = attrs.field(default=0, init=False)

    schema = param(registry, Bag, strict=False)
    assert schema["required"] == []
    assert list(schema["properties"]) == ["items"]
    assert "default" not in schema["properties"]["items"]


GOOGLE = """Get a forecast.

    Longer text.

    Args:
        city: The city.
        days: How many days.
    """
NUMPY = """Get a forecast.

    Longer text.

    Parameters
    ----------
    city : str
        The city.
    days : int
        How many days.
    """
REST = """Get a forecast.

    Longer text.

    :param city: The city.
    :param days: How many days.
    """


@pytest.mark.parametrize("doc", [GOOGLE, NUMPY, REST], ids=["google", "numpy", "rest"])
def test_docstrings(registry, doc):
    def fn(city: str, days: int) -> None: ...

    fn.__doc__ = doc
    spec = registry.register(fn, namespace="t")
    assert spec.description == "Get a forecast.\n\nLonger text."
    assert spec.parameters["properties"]["city"]["description"] == "The city."
    assert spec.parameters["properties"]["days"]["description"] == "How many days."


def test_no_docstring_uses_name(registry):
    def fn() -> None: ...

    spec = registry.register(fn, namespace="t")
    assert spec.description == "t.fn"
    assert spec.parameters == {
        "type": "object",
        "properties": {},
        "required": [],
        "additionalProperties": False,
    }


class Node:
    pass


@attrs.frozen
class Tree:
    children: list[Tree]


@attrs.frozen
class Untyped:
    x = attrs.field()


@attrs.frozen
class Broken:
    x: Missing  # type: ignore[name-defined]  # noqa: F821


class Flags(enum.Flag):
    A = 1


class Mixed(enum.Enum):
    A = 1
    B = "b"


class Empty(enum.Enum):
    pass


def _deep(n: int) -> Any:
    tp: Any = int
    for _ in range(n):
        tp = list[tp]
    return tp


@pytest.mark.parametrize(
    ("annotation", "reason"),
    [
        (set[int], "not supported"),
        (bytes, "not supported"),
        (Callable[[], int], "not supported"),
        (Node, "Node is not supported"),
        (Any, "not supported"),
        (int | str, "only unions of one type with None"),
        (int | str | None, "only unions of one type with None"),
        (list, "not supported"),
        (list[int, str], "a list needs one item type"),  # type: ignore[misc]
        (tuple[()], "a tuple needs item types"),
        (dict[int, str], r"only dict\[str, X\]"),
        (Literal[1.5], "not a str, int or bool"),
        (Literal[Color.RED], "not a str, int or bool"),
        (Flags, "non-flag"),
        (Empty, "non-empty"),
        (Mixed, "all str or all int"),
        (Tree, "recursive type Tree"),
        (Untyped, r"Untyped.x has no annotation"),
        (Broken, "cannot resolve the annotations of Broken"),
        (_deep(11), "nested deeper than 10 levels"),
        ([int], "not supported"),
    ],
)
def test_refused_types(registry, annotation, reason):
    def fn(value: int) -> None: ...

    fn.__annotations__ = {"value": annotation}
    with pytest.raises(ToolRegistrationError, match=rf"fn: parameter 'value': .*{reason}"):
        registry.register(fn, namespace="t", strict=False)


def test_deep_but_allowed(registry):
    assert param(registry, _deep(10))["type"] == "array"


def test_refused_signatures(registry):
    def star(*args: int) -> None: ...

    def kw(**kwargs: int) -> None: ...

    def pos(a: int, /) -> None: ...

    def bare(a) -> None: ...  # type: ignore[no-untyped-def]

    def forward(a: Nope) -> None: ...  # type: ignore[name-defined]  # noqa: F821

    for fn, pattern in [
        (star, r"star: parameter 'args': \*args"),
        (kw, r"kw: parameter 'kwargs': \*\*kwargs"),
        (pos, r"pos: parameter 'a': positional-only"),
        (bare, r"bare: parameter 'a': it has no type annotation"),
        (forward, r"forward: cannot read its signature"),
    ]:
        with pytest.raises(ToolRegistrationError, match=pattern):
            registry.register(fn, namespace="t")
    with pytest.raises(ToolRegistrationError, match="not callable"):
        registry.register(42, namespace="t")  # type: ignore[arg-type]
    with pytest.raises(ToolRegistrationError, match="it is a class"):
        registry.register(Point, namespace="t")
