"""Property tests: random supported annotations give strict schemas that accept their values.

For a random function built from random parameter types, the schema follows
OpenAI's strict rules, JSON values generated for the types validate against
it (``jsonschema``), and binding them gives back the same Python values.
"""

from __future__ import annotations

import enum
import inspect
import json
import keyword
import typing
from typing import Any, Literal

import attrs
import jsonschema
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st
from typing_extensions import NotRequired, TypedDict, is_typeddict

from assistant_service.adapters.tools import FunctionToolRegistry
from assistant_service.adapters.tools.converter import converter
from assistant_service.domain.errors import ToolRegistrationError
from assistant_service.domain.tools import ToolCall
from support.strict_rules import check_strict


class Color(str, enum.Enum):
    RED = "red"
    BLUE = "blue"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


BASE: list[Any] = [str, int, float, bool, Literal["a", "b"], Literal[1, 2], Color, Level]
_counter = iter(range(10**9))


def _fields() -> st.SearchStrategy[list[tuple[str, Any]]]:
    return st.lists(
        st.tuples(NAMES, annotations), max_size=3,
        unique_by=lambda f: f[0],
    )  # fmt: skip


def _attrs_class(fields: list[tuple[str, Any]]) -> Any:
    return attrs.make_class(f"C{next(_counter)}", {n: attrs.field(type=t) for n, t in fields})


def _typeddict(fields: list[tuple[str, Any]], optional: list[bool]) -> Any:
    hints = {n: NotRequired[t] if o else t for (n, t), o in zip(fields, optional, strict=False)}
    return TypedDict(f"T{next(_counter)}", hints)  # type: ignore[operator]


NAMES = st.from_regex(r"[a-z]{1,6}", fullmatch=True).filter(lambda n: not keyword.iskeyword(n))
annotations: st.SearchStrategy[Any] = st.deferred(
    lambda: (
        st.sampled_from(BASE)
        | st.sampled_from(BASE)
        | st.sampled_from(BASE)
        | st.builds(lambda t: list[t], annotations)
        | st.builds(lambda t: tuple[t, ...], annotations)
        | st.builds(lambda ts: tuple[tuple(ts)], st.lists(annotations, min_size=1, max_size=3))
        | st.builds(lambda t: t | None, annotations)
        | st.builds(_attrs_class, _fields())
        | st.builds(_typeddict, _fields(), st.lists(st.booleans(), min_size=3, max_size=3))
    )
)


def values(tp: Any) -> st.SearchStrategy[Any]:  # noqa: PLR0911 - one case per type
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is float:
        return st.floats(allow_nan=False, allow_infinity=False)
    if tp in (str, int, bool):
        return st.from_type(tp)
    if origin is Literal or (isinstance(tp, type) and issubclass(tp, enum.Enum)):
        return st.sampled_from(list(args or tp))
    if origin is list:
        return st.lists(values(args[0]), max_size=3)
    if origin is tuple and args[-1] is Ellipsis:
        return st.lists(values(args[0]), max_size=3).map(tuple)
    if origin is tuple:
        return st.tuples(*map(values, args))
    if origin is not None:  # X | None
        return st.none() | values(args[0])
    hints = typing.get_type_hints(tp)
    if attrs.has(tp):
        return st.builds(tp, **{n: values(t) for n, t in hints.items()})
    required = tp.__required_keys__
    return st.fixed_dictionaries(
        {n: values(t) for n, t in hints.items() if n in required},
        optional={
            n: values(t).filter(lambda v: v is not None)
            for n, t in hints.items()
            if n not in required
        },
    )


def encode(tp: Any, data: Any, *, strict: bool) -> Any:
    """Strict schemas list every key: send null for the TypedDict keys left out."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if data is None or not strict:
        return data
    if origin in (list, tuple):
        homogeneous = origin is list or args[-1] is Ellipsis
        kinds = [args[0]] * len(data) if homogeneous else args
        return [encode(t, d, strict=strict) for t, d in zip(kinds, data, strict=True)]
    if origin is not None and origin is not Literal:
        return encode(args[0], data, strict=strict)
    if is_typeddict(tp):
        hints = typing.get_type_hints(tp)
        return {n: encode(t, data.get(n), strict=strict) for n, t in hints.items()}
    if attrs.has(tp):
        hints = typing.get_type_hints(tp)
        return {n: encode(t, data[n], strict=strict) for n, t in hints.items()}
    return data


@st.composite
def functions(draw: st.DrawFn, *, strict: bool) -> tuple[Any, dict[str, Any], str, dict[str, Any]]:
    """A function, the Python values to call it with, their JSON, and the expected arguments."""
    params = draw(_fields())
    parameters, sent, expected = [], {}, {}
    for name, tp in params:
        value = draw(values(tp))
        has_default = draw(st.booleans())
        default = draw(values(tp)) if has_default else inspect.Parameter.empty
        parameters.append(
            inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=tp)
        )
        use_default = has_default and draw(st.booleans())
        if use_default:
            expected[name] = default
            if strict:
                sent[name] = None
        else:
            if has_default and value is None:
                value = default  # null for a parameter with a default means the default
            expected[name] = value
            sent[name] = encode(tp, converter().unstructure(value), strict=strict)

    def fn(**kwargs: Any) -> dict[str, Any]:
        return kwargs

    fn.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    fn.__annotations__ = dict(params)
    return fn, sent, json.dumps(sent), expected


def _check(strict: bool, case: tuple[Any, dict[str, Any], str, dict[str, Any]]) -> None:
    fn, sent, raw, expected = case
    registry = FunctionToolRegistry()
    try:
        spec = registry.register(fn, namespace="p", name="fn", strict=strict)
    except ToolRegistrationError as e:  # random types may nest past the 10-level bound
        assert "nested deeper than" in str(e)
        reject()
    if strict:
        check_strict(dict(spec.parameters))
    jsonschema.Draft202012Validator.check_schema(spec.parameters)
    jsonschema.validate(json.loads(raw), spec.parameters, cls=jsonschema.Draft202012Validator)
    bound = registry.bind(ToolCall(id="1", name="p.fn", arguments=raw))
    got = bound.function()
    expected_sent = {n: v for n, v in expected.items() if n in sent or not strict}
    assert got == {n: v for n, v in expected_sent.items() if n in got}
    assert set(got) <= set(expected)


SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(functions(strict=True))
def test_strict_schemas_accept_their_values(case):
    _check(True, case)


@SETTINGS
@given(functions(strict=False))
def test_plain_schemas_accept_their_values(case):
    _check(False, case)
