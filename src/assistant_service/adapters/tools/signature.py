"""A Python function to the shape of its parameters and the description of its tool.

Refuses, with ``ToolRegistrationError`` naming the function and the parameter:
``*args``/``**kwargs``, positional-only parameters, missing annotations and
types ``shapes`` does not support. The description is the docstring's summary
(short and long), parsed by ``docstring_parser`` (Google, NumPy or reST,
detected); its parameter descriptions become the properties' descriptions.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import attrs
import docstring_parser
import typing_extensions

from assistant_service.adapters.tools.shapes import (
    NO_DEFAULT,
    Field,
    Object,
    ShapeBuilder,
    UnsupportedTypeError,
)
from assistant_service.domain.errors import ToolRegistrationError

_REFUSED_KINDS = {
    inspect.Parameter.VAR_POSITIONAL: "*args is not supported; name each parameter",
    inspect.Parameter.VAR_KEYWORD: "**kwargs is not supported; name each parameter",
    inspect.Parameter.POSITIONAL_ONLY: "positional-only parameters are not supported",
}


@attrs.frozen
class FunctionShape:
    """What registration learned about a function."""

    qualname: str
    description: str
    parameters: Object
    annotations: dict[str, Any]
    is_async: bool


def describe_function(fn: Callable[..., Any], *, strict: bool) -> FunctionShape:
    """Inspect ``fn``; raise ``ToolRegistrationError`` if it cannot become a tool."""
    qualname = getattr(fn, "__qualname__", None) or repr(fn)

    def refuse(reason: str, parameter: str | None = None) -> ToolRegistrationError:
        where = f" parameter {parameter!r}:" if parameter else ""
        return ToolRegistrationError(f"cannot make a tool of {qualname}:{where} {reason}")

    if not callable(fn):
        raise refuse("it is not callable")
    try:
        signature = inspect.signature(fn)
        hints = typing_extensions.get_type_hints(fn, include_extras=True)
    except (TypeError, ValueError, NameError) as e:
        raise refuse(f"cannot read its signature ({e})") from e
    doc = docstring_parser.parse(inspect.getdoc(fn) or "")
    docs = {p.arg_name: p.description for p in doc.params if p.description}
    builder = ShapeBuilder(strict=strict)
    fields, annotations = [], {}
    for name, param in signature.parameters.items():
        if param.kind in _REFUSED_KINDS:
            raise refuse(_REFUSED_KINDS[param.kind], name)
        if name not in hints:
            raise refuse("it has no type annotation", name)
        try:
            shape = builder.build(hints[name])
        except UnsupportedTypeError as e:
            raise refuse(str(e), name) from e
        has_default = param.default is not inspect.Parameter.empty
        default = param.default if has_default else NO_DEFAULT
        fields.append(Field(name, shape, has_default, default, docs.get(name)))
        annotations[name] = hints[name]
    summary = "\n\n".join(p for p in (doc.short_description, doc.long_description) if p)
    return FunctionShape(
        qualname=qualname,
        description=summary,
        parameters=Object(tuple(fields)),
        annotations=annotations,
        is_async=inspect.iscoroutinefunction(fn),
    )
