"""Assistant spec directories: ``<root>/<name>/profile.json`` plus ``tools.py``, checked together.

A spec directory is how an assistant is written and reviewed::

    assistants/weather/
        profile.json   {"model": ..., "instructions": ..., "tools": ["get_forecast"], "limits": {...}}
        tools.py       the @tool functions, registered under the namespace "weather"

The directory name is the assistant id and its tools' namespace; the profile
lists tools by short name (``get_forecast``) or full name
(``weather.get_forecast``). Code ships in the image: a config repository holds
the profile only, never code. Every error is a ``ConfigurationError`` that
names the file and says what to fix.
"""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path
from typing import Any

import attrs

from assistant_service.adapters.config.codec import (
    MAX_PROFILE_BYTES,
    is_valid_assistant_id,
    json_object,
    profile_from_dict,
)
from assistant_service.adapters.tools import FunctionToolRegistry
from assistant_service.domain.errors import ConfigurationError, ToolRegistrationError
from assistant_service.domain.models import AssistantProfile

PROFILE_FILE = "profile.json"
TOOLS_FILE = "tools.py"
# Bounds a root: more assistants than this in one image is a mistake.
MAX_SPECS = 200


@attrs.frozen
class AssistantSpec:
    """A checked spec directory: its profile (tools by full name) and a registry of its own tools."""

    directory: Path
    profile: AssistantProfile
    tools: FunctionToolRegistry


def load_spec_directory(
    directory: str | Path, *, registry: FunctionToolRegistry | None = None
) -> AssistantSpec:
    """Load and check one spec directory.

    The spec's ``tools`` is a registry of this directory's tools alone; when
    ``registry`` is given they are added to it as well (all or nothing), which
    is how :func:`load_spec_directories` builds one registry for the service.
    Raises ``ConfigurationError`` naming the file and what to fix.
    """
    directory = Path(directory)
    name = directory.resolve().name
    if not directory.is_dir():
        raise ConfigurationError(f"{directory}: not a directory")
    if not is_valid_assistant_id(name):
        raise ConfigurationError(
            f"{directory}: the directory name is the assistant id: use 1-64 letters, "
            "digits, '_' or '-'"
        )
    data = _read_profile(directory / PROFILE_FILE, name)
    module = _import_tools(directory / TOOLS_FILE, name)
    own = FunctionToolRegistry()
    if module is not None:
        own = _register(None, module, name, directory / TOOLS_FILE)
    data["tools"] = _resolve_tools(data.get("tools", []), own, name, directory)
    profile = profile_from_dict(data, str(directory / PROFILE_FILE))
    if registry is not None and module is not None:
        _register(registry, module, name, directory / TOOLS_FILE)
    return AssistantSpec(directory=directory, profile=profile, tools=own)


def load_spec_directories(
    root: str | Path, *, registry: FunctionToolRegistry | None = None
) -> tuple[list[AssistantProfile], FunctionToolRegistry]:
    """Load every spec directory under ``root`` (each subdirectory with a ``profile.json``).

    Returns the profiles, sorted by id, and one registry holding every
    assistant's tools in its own namespace: ``registry`` when given (e.g. one
    already holding the entry points' tools), else a new one. Raises
    ``ConfigurationError`` for a missing root or any invalid spec.
    """
    root = Path(root)
    if not root.is_dir():
        raise ConfigurationError(f"{root}: no such directory (ASSISTANTS_DIR)")
    directories = sorted(p for p in root.iterdir() if (p / PROFILE_FILE).is_file())
    if len(directories) > MAX_SPECS:
        raise ConfigurationError(f"{root}: more than {MAX_SPECS} assistant spec directories")
    registry = FunctionToolRegistry() if registry is None else registry
    profiles = [load_spec_directory(d, registry=registry).profile for d in directories]
    return profiles, registry


def _read_profile(path: Path, name: str) -> dict[str, Any]:
    try:
        with path.open("rb") as file:
            data = json_object(file.read(MAX_PROFILE_BYTES + 1), str(path))
    except FileNotFoundError:
        raise ConfigurationError(
            f'{path}: missing; create it with at least {{"model": "<model name>"}}'
        ) from None
    except OSError as e:
        raise ConfigurationError(f"{path}: cannot read: {e.strerror or e}") from None
    given = data.setdefault("id", name)
    if given != name:
        raise ConfigurationError(
            f"{path}: id: {given!r} differs from the directory name {name!r}; "
            "remove the id or rename the directory"
        )
    return data


def _import_tools(path: Path, name: str) -> types.ModuleType | None:
    if not path.is_file():
        return None
    module_name = f"assistant_specs.{name}.tools"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:  # pragma: no cover - a .py file always has one
        raise ConfigurationError(f"{path}: cannot be imported")
    module = importlib.util.module_from_spec(spec)
    # Registered so type hints and attrs classes in the module resolve by module name.
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except SyntaxError as e:
        del sys.modules[module_name]
        raise ConfigurationError(f"{path}:{e.lineno}: syntax error: {e.msg}") from None
    except Exception as e:  # noqa: BLE001 - any error in the user's module is reported, not raised
        del sys.modules[module_name]
        raise ConfigurationError(f"{path}: cannot import: {type(e).__name__}: {e}") from None
    return module


def _register(
    registry: FunctionToolRegistry | None, module: types.ModuleType, name: str, path: Path
) -> FunctionToolRegistry:
    """Check ``module``'s tools on a scratch registry, then add them to ``registry``."""
    scratch = FunctionToolRegistry()
    try:
        specs = scratch.register_module(module, namespace=name)
    except ToolRegistrationError as e:
        raise ConfigurationError(f"{path}: {e.message}") from None
    foreign = [s.name for s in specs if not s.name.startswith(f"{name}.")]
    if foreign:
        raise ConfigurationError(
            f"{path}: tools {', '.join(foreign)} set another namespace; the tools of "
            f"spec directory {name!r} live in namespace {name!r}: remove namespace= from @tool"
        )
    if registry is not None:
        try:
            registry.register_module(module, namespace=name)
        except ToolRegistrationError as e:  # a name clash with tools registered before
            raise ConfigurationError(f"{path}: {e.message}") from None
    return scratch


def _resolve_tools(listed: Any, registry: FunctionToolRegistry, name: str, directory: Path) -> Any:
    if not isinstance(listed, list) or not all(isinstance(t, str) for t in listed):
        return listed  # the codec names the bad field
    known = registry.names()
    resolved = []
    for index, tool in enumerate(listed):
        full = tool if "." in tool else f"{name}.{tool}"
        if full not in known:
            defined = ", ".join(k.partition(".")[2] for k in known) or "no tools"
            where = f"{TOOLS_FILE} defines: {defined}" if known else f"there is no {TOOLS_FILE}"
            raise ConfigurationError(
                f"{directory / PROFILE_FILE}: tools[{index}]: unknown tool {tool!r}; {where}"
            )
        resolved.append(full)
    return resolved
