"""``FunctionToolRegistry``: plain Python functions as tools (the ``ToolRegistry`` port).

Tools are named ``namespace.name`` (see ``naming`` for the wire form). The
schema comes from the signature, type hints and docstring (see ``shapes``,
``schema`` and ``signature``); arguments are checked and converted before the
call (see ``arguments``); results are rendered by ``render``.
"""

from __future__ import annotations

import functools
import importlib.metadata
import inspect
import types
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import attrs

from assistant_service.adapters.tools.arguments import bind_arguments
from assistant_service.adapters.tools.marker import mark_of
from assistant_service.adapters.tools.naming import canonical_name
from assistant_service.adapters.tools.render import render
from assistant_service.adapters.tools.schema import parameters_schema
from assistant_service.adapters.tools.signature import FunctionShape, describe_function
from assistant_service.domain.errors import NotFoundError, ToolRegistrationError
from assistant_service.domain.tools import BoundTool, ToolCall, ToolSpec

ENTRY_POINT_GROUP = "assistant_service.tools"


@attrs.frozen
class _Tool:
    spec: ToolSpec
    function: Callable[..., Any]
    shape: FunctionShape


@attrs.define
class FunctionToolRegistry:
    """Registered functions, by canonical name, in registration order.

    Registration is all or nothing: a module or entry point that fails leaves
    the registry as it was.
    """

    _tools: dict[str, _Tool] = attrs.field(factory=dict, init=False)

    def register(
        self,
        fn: Callable[..., Any],
        *,
        namespace: str,
        name: str | None = None,
        strict: bool = True,
        requires_approval: bool = False,
    ) -> ToolSpec:
        """Register ``fn`` as ``namespace.name`` (``name`` defaults to ``fn.__name__``).

        With ``requires_approval``, a person approves each call before it runs.

        Raises ``ToolRegistrationError`` for a bad or duplicate name or a
        function that cannot become a tool (the message names the parameter).
        """
        tool = _prepare(
            fn, namespace=namespace, name=name, strict=strict, requires_approval=requires_approval
        )
        self._add([tool])
        return tool.spec

    def register_module(
        self, module: types.ModuleType, *, namespace: str | None = None
    ) -> list[ToolSpec]:
        """Register every ``@tool`` function found in ``module``'s globals.

        A tool's namespace is the one given to ``@tool``, else ``namespace``,
        else the last part of the module name. A function re-exported under
        two names is registered once.
        """
        default_namespace = namespace or module.__name__.rpartition(".")[2]
        prepared, seen = [], set()
        for value in list(vars(module).values()):
            mark = mark_of(value)
            if mark is None or id(value) in seen:
                continue
            seen.add(id(value))
            prepared.append(
                _prepare(
                    value,
                    namespace=mark.namespace or default_namespace,
                    name=mark.name,
                    strict=mark.strict,
                    requires_approval=mark.requires_approval,
                )
            )
        self._add(prepared)
        return [t.spec for t in prepared]

    def load_entry_points(self, group: str = ENTRY_POINT_GROUP) -> list[ToolSpec]:
        """Register the ``@tool`` functions of each module named by an entry point of ``group``.

        The entry point's name is the default namespace. Raises
        ``ToolRegistrationError`` for one that fails to import or is not a module.
        """
        specs = []
        for entry_point in importlib.metadata.entry_points(group=group):
            try:
                module = entry_point.load()
            except Exception as e:
                raise ToolRegistrationError(
                    f"cannot load tools from entry point {entry_point.name!r} "
                    f"({entry_point.value}): {e}"
                ) from e
            if not isinstance(module, types.ModuleType):
                raise ToolRegistrationError(
                    f"entry point {entry_point.name!r} ({entry_point.value}) must name a module"
                )
            specs.extend(self.register_module(module, namespace=entry_point.name))
        return specs

    def names(self) -> list[str]:
        """The canonical names of all registered tools, in registration order."""
        return list(self._tools)

    def specs(self, names: Sequence[str]) -> list[ToolSpec]:
        """The specs of the named tools, in order; ``NotFoundError`` for an unknown name."""
        return [self._get(n).spec for n in names]

    def bind(self, call: ToolCall) -> BoundTool:
        """Check and convert ``call.arguments`` and bind them to the function.

        Raises ``NotFoundError`` for an unknown tool (``call.name`` is the
        canonical name) and ``ToolArgumentsError`` for bad arguments. Never
        calls the function.
        """
        tool = self._get(call.name)
        kwargs = bind_arguments(call.name, tool.shape, call.arguments, strict=tool.spec.strict)
        return BoundTool(
            function=functools.partial(tool.function, **kwargs),
            is_async=tool.shape.is_async,
            render=render,
        )

    def _get(self, name: str) -> _Tool:
        try:
            return self._tools[name]
        except KeyError:
            raise NotFoundError("tool", name) from None

    def _add(self, tools: Iterable[_Tool]) -> None:
        new: dict[str, _Tool] = {}
        for tool in tools:
            name = tool.spec.name
            if name in self._tools or name in new:
                raise ToolRegistrationError(f"a tool named {name!r} is already registered")
            new[name] = tool
        self._tools.update(new)


def _prepare(
    fn: Callable[..., Any],
    *,
    namespace: str,
    name: str | None,
    strict: bool,
    requires_approval: bool = False,
) -> _Tool:
    if not callable(fn):
        raise ToolRegistrationError(f"cannot make a tool of {fn!r}: it is not callable")
    full_name = canonical_name(namespace, name or str(getattr(fn, "__name__", "")))
    shape = describe_function(fn, strict=strict)
    spec = ToolSpec(
        name=full_name,
        description=shape.description or full_name,
        parameters=parameters_schema(shape.parameters, strict=strict),
        strict=strict,
        requires_approval=requires_approval,
    )
    if inspect.isclass(fn):
        raise ToolRegistrationError(f"cannot make a tool of {shape.qualname}: it is a class")
    return _Tool(spec=spec, function=fn, shape=shape)
