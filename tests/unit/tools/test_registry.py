"""Registration, names, modules, entry points, rendering and the demo tools."""

from __future__ import annotations

import dataclasses
import enum
import sys
import types
from pathlib import Path

import anyio
import anyio.lowlevel
import attrs
import pytest

import assistant_service.adapters.tools as tools_package
from assistant_service.adapters.tools import (
    FunctionToolRegistry,
    demo,
    from_wire_name,
    to_wire_name,
    tool,
)
from assistant_service.adapters.tools.render import render
from assistant_service.domain.errors import NotFoundError, ToolRegistrationError
from assistant_service.domain.tools import ToolCall
from assistant_service.ports.tools import ToolRegistry


def test_exports():
    assert tools_package.__all__ == sorted(tools_package.__all__)
    assert all(hasattr(tools_package, n) for n in tools_package.__all__)


def test_satisfies_the_port(registry):
    port: ToolRegistry = registry
    assert port.specs([]) == []


def test_register_names_specs_and_duplicates(registry):
    def get_forecast(city: str) -> str:
        return city

    spec = registry.register(get_forecast, namespace="weather")
    assert spec.name == "weather.get_forecast"
    assert spec.strict is True
    other = registry.register(get_forecast, namespace="weather", name="forecast2", strict=False)
    assert other.strict is False
    assert registry.names() == ["weather.get_forecast", "weather.forecast2"]
    assert registry.specs(["weather.forecast2", "weather.get_forecast"]) == [other, spec]
    with pytest.raises(NotFoundError):
        registry.specs(["weather.nope"])
    with pytest.raises(ToolRegistrationError, match="'weather.get_forecast' is already registered"):
        registry.register(get_forecast, namespace="weather")


@pytest.mark.parametrize(
    ("namespace", "name", "message"),
    [
        ("a.b", "f", "invalid tool namespace"),
        ("a__b", "f", "invalid tool namespace"),
        ("a_", "f", "invalid tool namespace"),
        ("", "f", "invalid tool namespace"),
        ("a", "f.g", "invalid tool name"),
        ("a", "<lambda>", "invalid tool name"),
        ("a" * 30, "f" * 33, "too long"),
    ],
)
def test_bad_names(registry, namespace, name, message):
    def f() -> None: ...

    with pytest.raises(ToolRegistrationError, match=message):
        registry.register(f, namespace=namespace, name=name)


def test_wire_names_round_trip():
    assert to_wire_name("weather.get_forecast") == "weather__get_forecast"
    assert from_wire_name("weather__get_forecast") == "weather.get_forecast"
    assert from_wire_name("my-ns___private") == "my-ns._private"
    assert from_wire_name("plain") == "plain"


def test_decorator_marks_and_returns_the_function():
    def f() -> int:
        return 1

    assert tool(f) is f
    assert tool(name="g", strict=False)(f) is f
    assert f() == 1


def _module() -> types.ModuleType:
    module = types.ModuleType("pkg.weather_tools")

    @tool
    def forecast(city: str) -> str:
        return city

    @tool(name="other", namespace="elsewhere", strict=False)
    def renamed(extra: dict[str, int]) -> int:
        return len(extra)

    def unmarked() -> None: ...

    module.forecast = forecast  # type: ignore[attr-defined]
    module.alias = forecast  # type: ignore[attr-defined]
    module.renamed = renamed  # type: ignore[attr-defined]
    module.unmarked = unmarked  # type: ignore[attr-defined]
    return module


def test_register_module(registry):
    specs = registry.register_module(_module())
    assert [s.name for s in specs] == ["weather_tools.forecast", "elsewhere.other"]
    assert specs[1].strict is False
    again = FunctionToolRegistry()
    assert again.register_module(_module(), namespace="w")[0].name == "w.forecast"


def test_register_module_is_all_or_nothing(registry):
    module = _module()

    @tool
    def broken(*args: int) -> None: ...

    module.broken = broken  # type: ignore[attr-defined]
    with pytest.raises(ToolRegistrationError, match="broken"):
        registry.register_module(module)
    assert registry.names() == []
    registry.register_module(_module())
    with pytest.raises(ToolRegistrationError, match="already registered"):
        registry.register_module(_module())
    assert len(registry.names()) == 2


def _dist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, entry_points: str) -> None:
    info = tmp_path / "fake_tools-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fake-tools\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[test.tools]\n{entry_points}\n")
    monkeypatch.syspath_prepend(str(tmp_path))


def test_load_entry_points(registry, tmp_path, monkeypatch):
    _dist(tmp_path, monkeypatch, "demo = assistant_service.adapters.tools.demo")
    specs = registry.load_entry_points("test.tools")
    assert [s.name for s in specs] == ["demo.get_forecast", "demo.add", "demo.current_time"]


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("no_such_module_here", "cannot load tools from entry point 'bad'"),
        ("assistant_service.adapters.tools.demo:add", "must name a module"),
    ],
)
def test_bad_entry_points(registry, tmp_path, monkeypatch, target, message):
    _dist(tmp_path, monkeypatch, f"bad = {target}")
    with pytest.raises(ToolRegistrationError, match=message):
        registry.load_entry_points("test.tools")


def test_demo_tools(registry):
    registry.register_module(demo)
    forecast = registry.bind(ToolCall("1", "demo.get_forecast", '{"city": "Lisbon", "days": 9}'))
    days = forecast.function()
    assert len(days) == 7
    assert days == demo.get_forecast("lisbon ", 7)
    assert forecast.render(days).startswith('[{"day": 1, "sky": ')
    added = registry.bind(ToolCall("2", "demo.add", '{"a": 1, "b": 2.5}'))
    assert added.render(added.function()) == "3.5"
    now = registry.bind(ToolCall("3", "demo.current_time", '{"timezone": null}'))
    assert now.function().endswith("+00:00")
    assert demo.current_time("Europe/Paris")[-6:] in {"+01:00", "+02:00"}
    assert demo.current_time("Nowhere/Land") == "unknown time zone 'Nowhere/Land'"
    assert demo.current_time("../etc") == "unknown time zone '../etc'"


def test_async_tools(registry):
    async def slow(n: int) -> int:
        await anyio.lowlevel.checkpoint()
        return n * 2

    registry.register(slow, namespace="t")
    bound = registry.bind(ToolCall("1", "t.slow", '{"n": 2}'))
    assert bound.is_async
    assert anyio.run(bound.function) == 4


class Mood(enum.Enum):
    OK = "ok"


@dataclasses.dataclass
class Reading:
    value: float


class Unprintable:
    def __repr__(self) -> str:
        raise RuntimeError


class Circular(dict):  # type: ignore[type-arg]
    pass


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("plain text", "plain text"),
        (None, "null"),
        (3, "3"),
        ({"é": [1, (2, 3)]}, '{"é": [1, [2, 3]]}'),
        ({1, 2}, "[1, 2]"),
        (Mood.OK, '"ok"'),
        (Reading(1.5), '{"value": 1.5}'),
        (attrs.make_class("A", ["x"])(1), '{"x": 1}'),
        (Path("/tmp"), '"/tmp"'),
        (float("nan"), "nan"),
        ({(1, 2): 3}, "{(1, 2): 3}"),
    ],
)
def test_render(value, text):
    assert render(value) == text


def test_render_never_raises():
    assert render(Unprintable()) == "<unrenderable Unprintable>"
    loop = Circular()
    loop["self"] = loop
    assert render(loop) == "{'self': {...}}"
    assert sys.getrecursionlimit() > 0


def test_a_tool_marked_for_approval_says_so_in_its_spec(registry):
    module = types.ModuleType("payments")

    @tool(requires_approval=True)
    def transfer(amount: int) -> str:
        """Move money."""
        return str(amount)

    @tool
    def balance() -> str:
        """Read the balance."""
        return "0"

    module.transfer, module.balance = transfer, balance
    specs = {spec.name: spec for spec in registry.register_module(module)}
    assert specs["payments.transfer"].requires_approval
    assert not specs["payments.balance"].requires_approval
    assert registry.register(balance, namespace="x", requires_approval=True).requires_approval
