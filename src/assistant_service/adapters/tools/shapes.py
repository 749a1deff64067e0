"""Python annotations to a small tree of JSON value shapes.

Schema generation and argument checking both walk this tree, so what the
model is told and what the registry accepts cannot drift apart. Building it
refuses anything JSON cannot carry faithfully (``set``, ``bytes``, callables,
arbitrary classes, unions other than ``X | None``, recursive types) by raising
``UnsupportedTypeError``; the caller adds the function and parameter names.
"""

from __future__ import annotations

import enum
import types
import typing
from typing import Annotated, Any, Literal, Union

import attrs
import docstring_parser
import typing_extensions

# typing_extensions (a dependency of cattrs) knows both its own TypedDicts and
# typing's, and its NotRequired/Required are typing's on 3.11+.
from typing_extensions import NotRequired, Required, is_typeddict

# OpenAI's strict mode accepts at most 10 levels of nested objects and arrays.
MAX_NESTING = 10

_WRAPPERS = frozenset({Required, NotRequired})
_UNIONS = frozenset({Union, types.UnionType})


class UnsupportedTypeError(Exception):
    """An annotation that cannot become a tool parameter; the message says why."""


@attrs.frozen
class Scalar:
    """A JSON string, integer, number, boolean or null."""

    kind: Literal["string", "integer", "number", "boolean", "null"]
    description: str | None = attrs.field(default=None, kw_only=True)


@attrs.frozen
class Choice:
    """One of fixed JSON values: a ``Literal`` or the values of an ``Enum``."""

    values: tuple[str | int | bool, ...]
    description: str | None = attrs.field(default=None, kw_only=True)


@attrs.frozen
class Nullable:
    """``X | None``."""

    inner: Shape
    description: str | None = attrs.field(default=None, kw_only=True)


@attrs.frozen
class Array:
    """``list[X]`` or ``tuple[X, ...]``."""

    items: Shape
    description: str | None = attrs.field(default=None, kw_only=True)


@attrs.frozen
class FixedTuple:
    """``tuple[X, Y, ...]`` with a fixed length."""

    items: tuple[Shape, ...]
    description: str | None = attrs.field(default=None, kw_only=True)


@attrs.frozen
class Dictionary:
    """``dict[str, X]``: an open object, which strict mode cannot express."""

    values: Shape
    description: str | None = attrs.field(default=None, kw_only=True)


class _NoDefault(enum.Enum):
    NO_DEFAULT = "NO_DEFAULT"


# A field without a default value, or whose default is computed (an attrs factory).
NO_DEFAULT = _NoDefault.NO_DEFAULT


@attrs.frozen
class Field:
    """A property of an object; ``optional`` when it has a default or is ``NotRequired``."""

    name: str
    shape: Shape
    optional: bool = False
    default: Any = NO_DEFAULT
    description: str | None = None


@attrs.frozen
class Object:
    """A closed JSON object: function parameters, an attrs class or a TypedDict."""

    fields: tuple[Field, ...]
    description: str | None = attrs.field(default=None, kw_only=True)


Shape = Scalar | Choice | Nullable | Array | FixedTuple | Dictionary | Object

_SCALARS: dict[Any, Literal["string", "integer", "number", "boolean", "null"]] = {
    str: "string",
    int: "integer",
    float: "number",
    bool: "boolean",
    None: "null",
    type(None): "null",
}


def unwrap(annotation: Any) -> tuple[Any, str | None]:
    """Strip ``Annotated``, ``Required`` and ``NotRequired``; return the string metadata too."""
    notes: list[str] = []
    while True:
        origin = typing.get_origin(annotation)
        if origin is Annotated:
            notes.extend(m for m in annotation.__metadata__ if isinstance(m, str))
            annotation = annotation.__origin__
        elif origin in _WRAPPERS:
            annotation = typing.get_args(annotation)[0]
        else:
            return annotation, (" ".join(notes) or None)


def field_descriptions(cls: type) -> dict[str, str]:
    """Attribute descriptions from a class docstring (``Attributes:``/``Parameters``/``:param``)."""
    parsed = docstring_parser.parse(cls.__doc__ or "")
    return {p.arg_name: p.description for p in parsed.params if p.description}


def class_summary(cls: type) -> str | None:
    parsed = docstring_parser.parse(cls.__doc__ or "")
    return parsed.short_description


@attrs.define
class ShapeBuilder:
    """Builds shapes; ``strict`` refuses what OpenAI strict mode cannot express."""

    strict: bool
    _stack: list[type] = attrs.field(factory=list)

    def build(self, annotation: Any, depth: int = 0) -> Shape:
        annotation, note = unwrap(annotation)
        shape = self._build(annotation, depth)
        return attrs.evolve(shape, description=note) if note else shape

    def _build(self, tp: Any, depth: int) -> Shape:  # noqa: C901, PLR0911 - one case per type
        if depth > MAX_NESTING:
            raise UnsupportedTypeError(f"nested deeper than {MAX_NESTING} levels")
        kind = _scalar_kind(tp)
        if kind is not None:
            return Scalar(kind)
        origin, args = typing.get_origin(tp), typing.get_args(tp)
        if origin is Literal:
            return _literal(args)
        if isinstance(tp, type) and issubclass(tp, enum.Enum):
            return _enum(tp)
        if origin in _UNIONS:
            rest = [a for a in args if a is not type(None)]
            if len(rest) != 1 or len(args) != 2:
                raise UnsupportedTypeError(
                    f"{tp!r}: only unions of one type with None are supported"
                )
            return Nullable(self.build(rest[0], depth))
        if origin is list:
            return Array(self.build(_one_arg(tp, args), depth + 1))
        if origin is tuple:
            return self._tuple(tp, args, depth)
        if origin is dict:
            return self._dict(tp, args, depth)
        if isinstance(tp, type) and (attrs.has(tp) or is_typeddict(tp)):
            return self._object(tp, depth)
        raise UnsupportedTypeError(f"type {_name(tp)} is not supported")

    def _tuple(self, tp: Any, args: tuple[Any, ...], depth: int) -> Shape:
        if len(args) == 2 and args[1] is Ellipsis:
            return Array(self.build(args[0], depth + 1))
        if not args or Ellipsis in args:
            raise UnsupportedTypeError(f"{tp!r}: a tuple needs item types")
        return FixedTuple(tuple(self.build(a, depth + 1) for a in args))

    def _dict(self, tp: Any, args: tuple[Any, ...], depth: int) -> Shape:
        if len(args) != 2 or args[0] is not str:
            raise UnsupportedTypeError(f"{tp!r}: only dict[str, X] is supported")
        if self.strict:
            raise UnsupportedTypeError(
                f"{tp!r} is an open object, which OpenAI strict mode cannot express; "
                "use a TypedDict or attrs class, or register the tool with strict=False"
            )
        return Dictionary(self.build(args[1], depth + 1))

    def _object(self, cls: type, depth: int) -> Object:
        if cls in self._stack:
            raise UnsupportedTypeError(f"recursive type {cls.__qualname__} is not supported")
        self._stack.append(cls)
        try:
            hints = typing_extensions.get_type_hints(cls, include_extras=True)
        except Exception as e:  # unresolvable forward references
            raise UnsupportedTypeError(
                f"cannot resolve the annotations of {cls.__qualname__}: {e}"
            ) from e
        try:
            docs = field_descriptions(cls)
            fields = (
                self._attrs_fields(cls, hints, docs, depth)
                if attrs.has(cls)
                else self._typeddict_fields(cls, hints, docs, depth)
            )
        finally:
            self._stack.pop()
        return Object(tuple(fields), description=class_summary(cls))

    def _attrs_fields(
        self, cls: type, hints: dict[str, Any], docs: dict[str, str], depth: int
    ) -> list[Field]:
        fields = []
        for a in attrs.fields(cls):
            if not a.init:
                continue
            if a.name not in hints:
                raise UnsupportedTypeError(f"{cls.__qualname__}.{a.name} has no annotation")
            fields.append(
                Field(
                    a.name,
                    self.build(hints[a.name], depth + 1),
                    optional=a.default is not attrs.NOTHING,
                    default=_attrs_default(a.default),
                    description=docs.get(a.name),
                )
            )
        return fields

    def _typeddict_fields(
        self, cls: type, hints: dict[str, Any], docs: dict[str, str], depth: int
    ) -> list[Field]:
        total = bool(getattr(cls, "__total__", True))
        return [
            Field(
                name,
                self.build(hint, depth + 1),
                optional=not _key_required(hint, total=total),
                description=docs.get(name),
            )
            for name, hint in hints.items()
        ]


def _key_required(hint: Any, *, total: bool) -> bool:
    # Read from the hint, not __required_keys__: under PEP 563 (string
    # annotations) Python 3.10 and 3.11 miss NotRequired there.
    while True:
        origin = typing.get_origin(hint)
        if origin is Required:
            return True
        if origin is NotRequired:
            return False
        if origin is not Annotated:
            return total
        hint = hint.__origin__


def _attrs_default(default: Any) -> Any:
    if default is attrs.NOTHING or isinstance(default, attrs.Factory):  # type: ignore[arg-type]
        return NO_DEFAULT
    return default


def _scalar_kind(tp: Any) -> Literal["string", "integer", "number", "boolean", "null"] | None:
    try:
        return _SCALARS.get(tp)
    except TypeError:  # an unhashable annotation, refused later
        return None


def _one_arg(tp: Any, args: tuple[Any, ...]) -> Any:
    if len(args) != 1:
        raise UnsupportedTypeError(f"{tp!r}: a list needs one item type")
    return args[0]


def _literal(args: tuple[Any, ...]) -> Shape:
    values = [a for a in args if a is not None]
    for v in values:
        if not isinstance(v, str | int) or isinstance(v, enum.Enum):
            raise UnsupportedTypeError(f"Literal value {v!r} is not a str, int or bool")
    if not values:
        return Scalar("null")
    choice = Choice(tuple(values))
    return Nullable(choice) if None in args else choice


def _enum(cls: type[enum.Enum]) -> Choice:
    values = [m.value for m in cls]
    if issubclass(cls, enum.Flag) or not values:
        raise UnsupportedTypeError(f"enum {cls.__qualname__} must be a non-empty, non-flag Enum")
    if all(type(v) is str for v in values) or all(type(v) is int for v in values):
        return Choice(tuple(values))
    raise UnsupportedTypeError(f"enum {cls.__qualname__} must have all str or all int values")


def _name(tp: Any) -> str:
    return getattr(tp, "__qualname__", None) or repr(tp)
