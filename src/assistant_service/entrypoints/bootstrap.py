"""The composition root for embedding: an AssistantService from adapters, in-memory by default."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from types import ModuleType
from typing import Any

from assistant_service.adapters.config.memory import InMemoryConfigRepository
from assistant_service.adapters.llm.offline import offline_model
from assistant_service.adapters.state.memory import InMemoryStateStore
from assistant_service.adapters.tools import FunctionToolRegistry, demo
from assistant_service.application.observing import NO_OBSERVER
from assistant_service.application.service import (
    DEFAULT_APPROVAL_TTL,
    DEFAULT_EVENTS_TTL,
    DEFAULT_LOCK_TTL,
    AssistantService,
)
from assistant_service.domain.models import AssistantProfile
from assistant_service.ports.config import AssistantConfigRepository
from assistant_service.ports.language_model import LanguageModel
from assistant_service.ports.observer import Observer
from assistant_service.ports.run_state import StateStore
from assistant_service.ports.tools import ToolRegistry

ToolSource = ModuleType | Iterable[Callable[..., Any]]

DEMO_NAMESPACE = "demo"
# The id of the demo assistant, the default of an embedded or development service.
DEMO_ASSISTANT_ID = "demo"


def demo_tools() -> FunctionToolRegistry:
    """A registry of the demo tools, under the ``demo`` namespace."""
    registry = FunctionToolRegistry()
    registry.register_module(demo, namespace=DEMO_NAMESPACE)
    return registry


def demo_profile(
    registry: ToolRegistry | None = None, *, model: str = "offline"
) -> AssistantProfile:
    """The demo assistant: every tool of ``registry`` (default the demo tools), on ``model``.

    The offline model answers to any model name; a real backend needs a real one
    (the service passes ``DEFAULT_MODEL``).
    """
    names = demo_tools().names() if registry is None else _names(registry)
    return AssistantProfile(
        id=DEMO_ASSISTANT_ID,
        model=model,
        instructions="You are a helpful assistant. Use the tools when they help.",
        tools=tuple(names),
    )


def bootstrap(  # noqa: PLR0913 -- every part is keyword-only and optional
    *,
    profiles: Iterable[AssistantProfile] = (),
    tools: ToolRegistry | Mapping[str, ToolSource] | None = None,
    model: LanguageModel | None = None,
    configs: AssistantConfigRepository | None = None,
    default_assistant_id: str | None = None,
    state: StateStore | None = None,
    lock_ttl: float = DEFAULT_LOCK_TTL,
    events_ttl: float = DEFAULT_EVENTS_TTL,
    approval_ttl: float = DEFAULT_APPROVAL_TTL,
    observer: Observer = NO_OBSERVER,
) -> AssistantService:
    """Build an :class:`AssistantService`; every part not given is in-memory and offline.

    ``tools`` is a registry, or a mapping of namespace to a module (its ``@tool``
    functions) or to a list of functions. Without ``profiles`` and ``configs`` the
    service holds the demo assistant. The default assistant is
    ``default_assistant_id``, else the only profile given. ``state`` holds the
    run leases (and the offline model's history when no ``model`` is given); give
    a model that keeps history the same store. In memory by default: several
    processes share a Redis or Firestore one.
    ``observer`` is told of every run, step and tool call (metrics, traces).
    Raises ``ToolRegistrationError`` for a function that cannot be a tool.
    """
    registry = _registry(tools)
    given = list(profiles)
    if configs is None:
        configs = InMemoryConfigRepository.of(given or [demo_profile(registry)])
        if not given:
            default_assistant_id = default_assistant_id or DEMO_ASSISTANT_ID
    if default_assistant_id is None and len(given) == 1:
        default_assistant_id = given[0].id
    state = state or InMemoryStateStore()
    return AssistantService(
        model=model or offline_model(store=state),
        configs=configs,
        tools=registry,
        state=state,
        default_assistant_id=default_assistant_id,
        lock_ttl=lock_ttl,
        events_ttl=events_ttl,
        approval_ttl=approval_ttl,
        observer=observer,
    )


def _registry(tools: ToolRegistry | Mapping[str, ToolSource] | None) -> ToolRegistry:
    if tools is None:
        return demo_tools()
    if not isinstance(tools, Mapping):
        return tools
    registry = FunctionToolRegistry()
    for namespace, source in tools.items():
        functions: Iterable[Callable[..., Any]] = ()
        if isinstance(source, ModuleType):
            registry.register_module(source, namespace=namespace)
        else:
            functions = source
        for function in functions:
            registry.register(function, namespace=namespace)
    return registry


def _names(registry: ToolRegistry) -> list[str]:
    names = getattr(registry, "names", None)
    return list(names()) if callable(names) else []
