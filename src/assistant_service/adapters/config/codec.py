"""The assistant-profile codec: ``AssistantProfile`` <-> JSON, shared by every config adapter.

One cattrs ``Converter`` with strict scalar hooks (JSON ``5`` is not the string
``"5"``, ``"abc"`` is not a list of tools) and ``forbid_extra_keys``, so a typo
in a profile is an error, not a silently ignored key. Errors become a
``ConfigurationError`` whose message names the source and every bad field:
``"gs://b/assistants/x.json: limits.max_tool_rounds: expected an integer"``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any, TypeVar

import cattrs
from cattrs.errors import (
    ClassValidationError,
    ForbiddenExtraKeysError,
    IterableValidationError,
    IterableValidationNote,
)

from assistant_service.domain.errors import ConfigurationError
from assistant_service.domain.models import AssistantProfile, RunLimits

__all__ = [
    "MAX_PROFILE_BYTES",
    "is_valid_assistant_id",
    "json_object",
    "profile_from_dict",
    "profile_from_json",
    "profile_to_dict",
    "profile_to_json",
]

# A profile is a few kilobytes; anything much bigger is a mistake or an attack.
MAX_PROFILE_BYTES = 1_000_000

# Ids become file and object names: no path separators, no dot-dot, bounded length.
_ASSISTANT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")

T = TypeVar("T")


def is_valid_assistant_id(assistant_id: str) -> bool:
    """Whether ``assistant_id`` can name a profile (and so a file or an object)."""
    return _ASSISTANT_ID.fullmatch(assistant_id) is not None


def _strict(kind: type[T], label: str, accept: tuple[type, ...]) -> Callable[[Any, Any], T]:
    def structure(value: Any, _type: Any) -> T:
        # bool is an int subclass: true is never a number here.
        if isinstance(value, bool) and kind is not bool:
            raise TypeError(f"expected {label}, got a boolean")
        if not isinstance(value, accept):
            raise TypeError(f"expected {label}, got {_json_type(value)}")
        return kind(value)  # type: ignore[call-arg]

    return structure


def _json_type(value: Any) -> str:
    names = {str: "a string", int: "an integer", float: "a number", bool: "a boolean"}
    names |= {list: "a list", dict: "an object", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def _string_list(value: Any, _type: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise TypeError(f"expected a list of strings, got {_json_type(value)}")
    errors: list[Exception] = []
    for index, item in enumerate(value):
        if not isinstance(item, str):
            error = TypeError(f"expected a string, got {_json_type(item)}")
            error.__notes__ = [IterableValidationNote(f"index {index}", index, str)]
            errors.append(error)
    if errors:
        raise IterableValidationError("invalid list of strings", errors, tuple[str, ...])
    return tuple(value)


def _make_converter() -> cattrs.Converter:
    converter = cattrs.Converter(forbid_extra_keys=True)
    converter.register_structure_hook(str, _strict(str, "a string", (str,)))
    converter.register_structure_hook(int, _strict(int, "an integer", (int,)))
    converter.register_structure_hook(float, _strict(float, "a number", (int, float)))
    converter.register_structure_hook(bool, _strict(bool, "a boolean", (bool,)))
    # Generic aliases need the predicate form; tools are the only tuple in a profile.
    converter.register_structure_hook_func(lambda t: t == tuple[str, ...], _string_list)
    converter.register_unstructure_hook_func(lambda t: t == tuple[str, ...], list)
    limits = converter.get_structure_hook(RunLimits)
    converter.register_structure_hook(RunLimits, lambda v, t: limits(_object(v), t))
    return converter


def _object(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TypeError(f"expected an object, got {_json_type(value)}")
    return value


_converter = _make_converter()


def profile_to_dict(profile: AssistantProfile) -> dict[str, Any]:
    """The JSON-able form of ``profile``: tools as a list, limits nested, every field present."""
    return _converter.unstructure(profile)  # type: ignore[no-any-return]


def profile_to_json(profile: AssistantProfile) -> str:
    """``profile`` as indented JSON text ending with a newline (what files and objects hold)."""
    return json.dumps(profile_to_dict(profile), indent=2, ensure_ascii=False) + "\n"


def profile_from_dict(data: Any, source: str) -> AssistantProfile:
    """Build a profile from decoded JSON; ``source`` names where it came from in errors.

    Raises ``ConfigurationError("<source>: <field>: <what is wrong>; ...")``.
    """
    if not isinstance(data, dict):
        raise ConfigurationError(f"{source}: expected a JSON object, got {_json_type(data)}")
    try:
        profile = _converter.structure(data, AssistantProfile)
    except (ClassValidationError, IterableValidationError) as e:
        raise ConfigurationError(f"{source}: {'; '.join(_messages(e))}") from None
    except (TypeError, ValueError) as e:  # pragma: no cover - cattrs wraps these itself
        raise ConfigurationError(f"{source}: {e}") from None
    if not is_valid_assistant_id(profile.id):
        raise ConfigurationError(
            f"{source}: id: {profile.id!r} is not a valid assistant id "
            "(1-64 letters, digits, '_' or '-', starting with a letter or digit)"
        )
    if not profile.model.strip():
        raise ConfigurationError(f"{source}: model: must not be empty")
    return profile


def profile_from_json(text: str | bytes, source: str) -> AssistantProfile:
    """Parse and validate a profile from JSON text; errors name ``source`` and the field.

    Raises ``ConfigurationError`` for text that is too big, not UTF-8, not JSON
    or not a valid profile.
    """
    return profile_from_dict(json_object(text, source), source)


def json_object(text: str | bytes, source: str) -> dict[str, Any]:
    """Parse ``text`` as one JSON object of bounded size; ``ConfigurationError`` naming ``source``."""
    if len(text) > MAX_PROFILE_BYTES:
        raise ConfigurationError(f"{source}: larger than {MAX_PROFILE_BYTES} bytes")
    try:
        # Decode first: json.loads would take bytes for UTF-16 or UTF-32 too.
        data = json.loads(text.decode() if isinstance(text, bytes) else text)
    except UnicodeDecodeError:
        raise ConfigurationError(f"{source}: not UTF-8 text") from None
    except json.JSONDecodeError as e:
        raise ConfigurationError(
            f"{source}: not valid JSON: {e.msg} (line {e.lineno}, column {e.colno})"
        ) from None
    if not isinstance(data, dict):
        raise ConfigurationError(f"{source}: expected a JSON object, got {_json_type(data)}")
    return data


def _format(exc: BaseException, _type: Any) -> str:
    if isinstance(exc, ForbiddenExtraKeysError):
        return f"unknown field(s): {', '.join(sorted(exc.extra_fields))}"
    if isinstance(exc, KeyError):
        return "required field missing"
    # Our strict hooks and attrs validators say what is wrong in their message.
    return str(exc) or type(exc).__name__


def _messages(exc: ClassValidationError | IterableValidationError) -> list[str]:
    messages = []
    for line in cattrs.transform_error(exc, path="", format_exception=_format):
        what, _, path = line.rpartition(" @ ")
        path = path.lstrip(".")
        messages.append(f"{path}: {what}" if path else what)
    return messages
