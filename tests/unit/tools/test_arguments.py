"""Binding calls: untrusted JSON checked and converted to the annotated types."""

from __future__ import annotations

import enum
import json
from typing import Annotated, Literal

import attrs
import pytest
from typing_extensions import NotRequired, TypedDict

from assistant_service.adapters.tools import FunctionToolRegistry
from assistant_service.adapters.tools.arguments import MAX_ARGUMENTS_BYTES
from assistant_service.domain.errors import NotFoundError, ToolArgumentsError
from assistant_service.domain.tools import ToolCall


class Color(str, enum.Enum):
    RED = "red"


class Level(enum.IntEnum):
    ONE = 1


@attrs.frozen
class Point:
    x: float
    y: float = attrs.field(default=0.0, validator=attrs.validators.ge(0))


class Movie(TypedDict):
    title: str
    year: NotRequired[int]


def everything(
    n: int,
    f: float,
    s: Annotated[str, "text"],
    b: bool,
    lit: Literal["a", 1],
    color: Color,
    level: Level,
    items: list[int],
    pair: tuple[int, str],
    many: tuple[float, ...],
    point: Point,
    movie: Movie,
    maybe: int | None,
    days: int = 1,
) -> dict[str, object]:
    return locals()


def call(registry: FunctionToolRegistry, args: object, name: str = "t.everything") -> object:
    raw = args if isinstance(args, str) else json.dumps(args)
    bound = registry.bind(ToolCall(id="c1", name=name, arguments=raw))
    return bound.function()


GOOD = {
    "n": 1,
    "f": 2,
    "s": "x",
    "b": True,
    "lit": 1,
    "color": "red",
    "level": 1,
    "items": [1, 2],
    "pair": [3, "y"],
    "many": [1, 2.5],
    "point": {"x": 1, "y": None},
    "movie": {"title": "M", "year": None},
    "maybe": None,
    "days": None,
}


@pytest.fixture
def tools(registry):
    registry.register(everything, namespace="t")
    registry.register(everything, namespace="loose", strict=False)
    return registry


def test_converts_to_annotated_types(tools):
    assert call(tools, GOOD) == {
        "n": 1,
        "f": 2.0,
        "s": "x",
        "b": True,
        "lit": 1,
        "color": Color.RED,
        "level": Level.ONE,
        "items": [1, 2],
        "pair": (3, "y"),
        "many": (1.0, 2.5),
        "point": Point(1.0, 0.0),
        "movie": {"title": "M"},
        "maybe": None,
        "days": 1,
    }


def test_non_strict_null_for_a_non_nullable_default_means_default(tools):
    result = call(tools, {**GOOD, "days": None}, "loose.everything")
    assert isinstance(result, dict)
    assert result["days"] == 1
    loose = {k: v for k, v in GOOD.items() if k != "days"}
    assert call(tools, loose, "loose.everything") == result


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"n": True}, "n: expected integer, got boolean"),
        ({"n": 1.5}, "n: expected integer, got number"),
        ({"f": "1"}, "f: expected number, got string"),
        ({"b": 1}, "b: expected boolean, got integer"),
        ({"s": None}, "s: expected string, got null"),
        ({"lit": True}, 'lit: expected one of "a", 1, got true'),
        ({"lit": "b" * 50}, 'lit: expected one of .*, got "b{30,}\\.\\.\\.'),
        ({"color": "blue"}, 'color: expected one of "red"'),
        ({"level": True}, "level: expected one of 1, got true"),
        ({"items": "12"}, "items: expected array, got string"),
        ({"items": [1, "2"]}, r"items\[1\]: expected integer, got string"),
        ({"pair": [1]}, "pair: expected 2 items, got 1"),
        ({"pair": ["1", "y"]}, r"pair\[0\]: expected integer"),
        ({"point": [1]}, "point: expected object, got array"),
        ({"point": {"y": 1}}, "point.x: required field missing"),
        ({"point": {"x": 1, "z": 1}}, "point: unknown field\\(s\\) 'z'"),
        ({"point": {"x": 1, "y": -1}}, "invalid value @ point"),
        ({"movie": {"year": 1}}, "movie.title: required field missing"),
        ({"extra": 1, "more": 2}, "arguments: unknown field\\(s\\) 'extra', 'more'"),
    ],
)
def test_bad_values_name_the_path(tools, change, message):
    with pytest.raises(ToolArgumentsError, match=rf"invalid arguments for t.everything: {message}"):
        call(tools, {**GOOD, **change})


def test_missing_required_parameter(tools):
    args = {k: v for k, v in GOOD.items() if k != "n"}
    with pytest.raises(ToolArgumentsError, match="n: required field missing"):
        call(tools, args)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("[]", "expected a JSON object, got array"),
        ('"x"', "expected a JSON object, got string"),
        ("null", "expected a JSON object, got null"),
        ("{", "not valid JSON"),
        ('{"a": 1, "a": 2}', "duplicate key 'a'"),
        ('{"a": Infinity}', "Infinity is not valid JSON"),
        ("[" * 100_000, "nested deeper than 32 levels"),
        ('{"a": ' + "[" * 40 + "]" * 40 + "}", "nested deeper than 32 levels"),
        ('{"a": "' + "x" * MAX_ARGUMENTS_BYTES + '"}', f"larger than {MAX_ARGUMENTS_BYTES} bytes"),
        ('{"a": "' + "é" * (MAX_ARGUMENTS_BYTES // 2) + '"}', "larger than"),
    ],
)
def test_untrusted_json(tools, raw, message):
    with pytest.raises(ToolArgumentsError, match=message):
        call(tools, raw)


def test_dict_arguments_outside_strict_mode(registry):
    def scores(by_name: dict[str, int]) -> dict[str, int]:
        return by_name

    registry.register(scores, namespace="t", strict=False)
    assert call(registry, {"by_name": {"a": 1}}, "t.scores") == {"a": 1}
    with pytest.raises(ToolArgumentsError, match=r"by_name\['a'\]: expected integer"):
        call(registry, {"by_name": {"a": "1"}}, "t.scores")


def test_empty_arguments_mean_no_arguments(registry):
    def ping() -> str:
        return "pong"

    registry.register(ping, namespace="t")
    assert call(registry, "", "t.ping") == "pong"


def test_unknown_tool(registry):
    with pytest.raises(NotFoundError, match="unknown tool: 'x.y'"):
        call(registry, {}, "x.y")
