"""The tool-registry port's contract.

Every ToolRegistry adapter must pass this suite. Add a factory to
``REGISTRIES`` that returns a registry holding the two tools below,
``contract.greet`` (sync) and ``contract.count`` (async), however that adapter
defines tools.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import pytest

from assistant_service.adapters.tools import FunctionToolRegistry
from assistant_service.domain.errors import NotFoundError, ToolArgumentsError
from assistant_service.domain.tools import ToolCall
from assistant_service.ports.tools import ToolRegistry


def greet(name: str, excited: bool = False) -> str:
    """Greet someone.

    Args:
        name: Who to greet.
        excited: End with an exclamation mark.
    """
    return f"Hello, {name}{'!' if excited else '.'}"


async def count(items: list[str]) -> int:
    """Count items.

    Args:
        items: The items.
    """
    return len(items)


def function_registry() -> ToolRegistry:
    registry = FunctionToolRegistry()
    registry.register(greet, namespace="contract")
    registry.register(count, namespace="contract")
    return registry


REGISTRIES: dict[str, Callable[[], ToolRegistry]] = {"functions": function_registry}


@pytest.fixture(params=sorted(REGISTRIES))
def registry(request) -> ToolRegistry:
    return REGISTRIES[request.param]()


async def run(registry: ToolRegistry, call: ToolCall) -> str:
    bound = registry.bind(call)
    result = await bound.function() if bound.is_async else bound.function()
    assert inspect.iscoroutinefunction(bound.function) == bound.is_async
    return bound.render(result)


def test_specs_come_in_the_order_asked(registry):
    specs = registry.specs(["contract.count", "contract.greet"])
    assert [spec.name for spec in specs] == ["contract.count", "contract.greet"]
    for spec in specs:
        assert spec.parameters["type"] == "object"
        assert spec.description


def test_specs_of_an_unknown_tool_are_not_found(registry):
    with pytest.raises(NotFoundError):
        registry.specs(["contract.greet", "contract.missing"])


@pytest.mark.anyio
async def test_a_valid_call_is_bound_run_and_rendered(registry):
    assert (
        await run(registry, ToolCall("c1", "contract.greet", '{"name": "Ada", "excited": true}'))
        == "Hello, Ada!"
    )
    # A strict schema sends null for an optional parameter: its default applies.
    assert (
        await run(registry, ToolCall("c3", "contract.greet", '{"name": "Bo", "excited": null}'))
        == "Hello, Bo."
    )
    assert await run(registry, ToolCall("c2", "contract.count", '{"items": ["a", "b"]}')) == "2"


@pytest.mark.parametrize(
    "arguments",
    ["{", "[]", '"text"', '{"name": 3}', '{"nme": "Ada"}', '{"name": "Ada", "excited": "yes"}'],
)
def test_bad_arguments_are_refused(registry, arguments):
    with pytest.raises(ToolArgumentsError):
        registry.bind(ToolCall("c1", "contract.greet", arguments))


def test_binding_an_unknown_tool_is_not_found(registry):
    with pytest.raises(NotFoundError):
        registry.bind(ToolCall("c1", "contract.nope", "{}"))
