"""Fixtures for the domain's unit tests: the facade on the scripted model and real function tools."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from assistant_service.adapters.config.memory import InMemoryConfigRepository
from assistant_service.adapters.llm.scripted import ScriptedModel
from assistant_service.adapters.tools import FunctionToolRegistry
from assistant_service.application.service import AssistantService
from assistant_service.domain.models import AssistantProfile, RunLimits


class Harness:
    """A service whose tools and limits each test sets up."""

    def __init__(self) -> None:
        self.model = ScriptedModel()
        self.registry = FunctionToolRegistry()
        self.limits = RunLimits(tool_timeout=2.0)
        self.allowed: list[str] | None = None

    def tool(self, function: Callable[..., Any], namespace: str = "t") -> str:
        self.registry.register(function, namespace=namespace)
        return f"{namespace}.{function.__name__}"

    def service(self, **limits: Any) -> AssistantService:
        profile = AssistantProfile(
            id="tester",
            model="scripted",
            tools=tuple(self.registry.names() if self.allowed is None else self.allowed),
            limits=RunLimits(**{**_fields(self.limits), **limits}),
        )
        return AssistantService(
            model=self.model,
            state=self.model.store,
            configs=InMemoryConfigRepository.of(profile),
            tools=self.registry,
            default_assistant_id="tester",
        )


def _fields(limits: RunLimits) -> dict[str, Any]:
    import attrs  # noqa: PLC0415

    return attrs.asdict(limits)


@pytest.fixture
def harness() -> Harness:
    return Harness()
