"""Helpers for testing code built on assistant-service, with no network.

pytest loads the fixtures by itself wherever the package is installed (the
``pytest11`` entry point ``assistant_service.testing``; on ``PYTHONPATH`` alone,
pass ``-p assistant_service.testing`` or set ``pytest_plugins``). Override
``assistant_profile`` and ``tool_registry`` with your own assistant and tools,
and mark async tests ``anyio``::

    pytestmark = pytest.mark.anyio

    async def test_forecast(assistant_service, scripted_model):
        scripted_model.script(
            call_tools(call_tool("weather.get_forecast", {"city": "Paris"})),
            reply("Sunny in Paris."),
        )
        conversation_id = await assistant_service.start_conversation()
        result = await assistant_service.chat(conversation_id, "Weather in Paris?")
        assert result.tool_outcomes[0].ok

This module needs pytest (the fixtures are pytest fixtures). It holds no assert
of its own, so pytest need not rewrite it: PYTEST_DONT_REWRITE (a conftest that
imports from it before its ``pytest_plugins`` line is read then gets no
"already imported" warning).
"""

from __future__ import annotations

import pytest

from assistant_service.adapters.config.memory import InMemoryConfigRepository
from assistant_service.adapters.llm.offline import offline_model
from assistant_service.adapters.llm.scripted import (
    ScriptedModel,
    ScriptedStep,
    StepRequest,
    call_tool,
    call_tools,
    fail,
    reply,
)
from assistant_service.adapters.secrets.memory import (
    EnvironmentSecretRepository,
    InMemorySecretRepository,
)
from assistant_service.adapters.state.memory import InMemoryStateStore
from assistant_service.adapters.tools import FunctionToolRegistry
from assistant_service.application.service import AssistantService
from assistant_service.domain.models import AssistantProfile, RunResult
from assistant_service.domain.runs import ApprovalDecision
from assistant_service.domain.tools import INTERRUPTED_OUTPUT

__all__ = [
    "INTERRUPTED_OUTPUT",
    "ApprovalDecision",
    "EnvironmentSecretRepository",
    "FunctionToolRegistry",
    "InMemoryConfigRepository",
    "InMemorySecretRepository",
    "InMemoryStateStore",
    "ScriptedModel",
    "ScriptedStep",
    "StepRequest",
    "assistant_profile",
    "assistant_service",
    "call_tool",
    "call_tools",
    "decisions",
    "fail",
    "offline_model",
    "reply",
    "scripted_model",
    "state_store",
    "tool_registry",
]


def decisions(
    result: RunResult, *, approve: bool = True, reason: str | None = None
) -> list[ApprovalDecision]:
    """One decision for every call ``result`` left waiting for approval, all alike.

    ``await service.approve(conversation_id, result.run_id, decisions(result))``
    plays the person who approves (or, with ``approve=False``, denies) them.
    """
    return [ApprovalDecision(call.id, approve, reason) for call in result.pending]


@pytest.fixture
def state_store() -> InMemoryStateStore:
    """The in-memory state store the scripted model and the service share."""
    return InMemoryStateStore()


@pytest.fixture
def scripted_model(state_store: InMemoryStateStore) -> ScriptedModel:
    """A fresh ScriptedModel; queue its steps with ``scripted_model.script(...)``."""
    return ScriptedModel(store=state_store)


@pytest.fixture
def assistant_profile(tool_registry: FunctionToolRegistry) -> AssistantProfile:
    """The assistant under test; override it to test your own. Allows every registered tool."""
    return AssistantProfile(
        id="test-assistant", model="scripted", tools=tuple(tool_registry.names())
    )


@pytest.fixture
def tool_registry() -> FunctionToolRegistry:
    """An empty registry; override it to register your tools."""
    return FunctionToolRegistry()


@pytest.fixture
def assistant_service(
    scripted_model: ScriptedModel,
    assistant_profile: AssistantProfile,
    tool_registry: FunctionToolRegistry,
    state_store: InMemoryStateStore,
) -> AssistantService:
    """An AssistantService on the scripted model, with ``assistant_profile`` as its default."""
    return AssistantService(
        model=scripted_model,
        state=state_store,
        configs=InMemoryConfigRepository.of(assistant_profile),
        tools=tool_registry,
        default_assistant_id=assistant_profile.id,
    )
