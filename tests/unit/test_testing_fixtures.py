"""``assistant_service.testing`` used the way a user's test suite uses it."""

from __future__ import annotations

import pytest

from assistant_service import (
    AssistantProfile,
    FunctionToolRegistry,
    RunStatus,
    UpstreamUnavailableError,
)
from assistant_service.testing import call_tool, call_tools, decisions, fail, reply

pytestmark = pytest.mark.anyio


def get_forecast(city: str, days: int = 1) -> str:
    """Forecast the weather.

    Args:
        city: The city.
        days: Days ahead.
    """
    return f"Sunny in {city} for {days} day(s)."


@pytest.fixture
def tool_registry() -> FunctionToolRegistry:
    registry = FunctionToolRegistry()
    registry.register(get_forecast, namespace="weather")
    return registry


async def test_the_default_profile_allows_the_registered_tools(assistant_profile):
    assert assistant_profile.tools == ("weather.get_forecast",)


async def test_a_scripted_tool_round_reaches_the_users_tool(assistant_service, scripted_model):
    scripted_model.script(
        call_tools(call_tool("weather.get_forecast", {"city": "Paris"})),
        reply("Sunny in Paris."),
    )
    conversation_id = await assistant_service.start_conversation()

    result = await assistant_service.chat(conversation_id, "Weather in Paris?")

    assert result.tool_outcomes[0].ok
    assert result.texts == ["Sunny in Paris."]
    assert scripted_model.requests[1].step.outcomes[0].output == "Sunny in Paris for 1 day(s)."
    assert [spec.name for spec in scripted_model.requests[0].tools] == ["weather.get_forecast"]


async def test_a_scripted_failure_reaches_the_caller(assistant_service, scripted_model):
    scripted_model.script(fail(UpstreamUnavailableError("busy", retry_after=1)))
    conversation_id = await assistant_service.start_conversation()
    with pytest.raises(UpstreamUnavailableError):
        await assistant_service.chat(conversation_id, "hello?")


class TestAnOverriddenProfile:
    @pytest.fixture
    def assistant_profile(self) -> AssistantProfile:
        return AssistantProfile(id="no-tools", model="scripted", tools=())

    async def test_a_tool_outside_the_profile_is_refused(self, assistant_service, scripted_model):
        scripted_model.script(
            call_tools(call_tool("weather.get_forecast", {"city": "Oslo"})), reply("ok")
        )
        conversation_id = await assistant_service.start_conversation()
        result = await assistant_service.chat(conversation_id, "Weather?")
        assert result.tool_outcomes[0].status.value == "not_allowed"
        assert scripted_model.requests[0].tools == ()


class TestAScriptedApproval:
    @pytest.fixture
    def tool_registry(self) -> FunctionToolRegistry:
        registry = FunctionToolRegistry()
        registry.register(get_forecast, namespace="weather", requires_approval=True)
        return registry

    async def test_a_test_plays_the_person_who_approves(self, assistant_service, scripted_model):
        scripted_model.script(
            call_tools(call_tool("weather.get_forecast", {"city": "Rome"})), reply("Sunny.")
        )
        conversation_id = await assistant_service.start_conversation()
        stopped = await assistant_service.chat(conversation_id, "Weather in Rome?")
        assert stopped.status is RunStatus.REQUIRES_APPROVAL
        assert scripted_model.remaining_steps == 1  # the tool has not run

        result = await assistant_service.approve(
            conversation_id, stopped.run_id, decisions(stopped)
        )

        assert result.texts == ["Sunny."]
        assert result.tool_outcomes[0].output == "Sunny in Rome for 1 day(s)."

    async def test_a_test_plays_the_person_who_denies(self, assistant_service, scripted_model):
        scripted_model.script(
            call_tools(call_tool("weather.get_forecast", {"city": "Rome"})), reply("As you wish.")
        )
        conversation_id = await assistant_service.start_conversation()
        stopped = await assistant_service.chat(conversation_id, "Weather in Rome?")
        denied = decisions(stopped, approve=False, reason="not now")
        result = await assistant_service.approve(conversation_id, stopped.run_id, denied)
        assert result.tool_outcomes[0].status.value == "denied"
        assert "not now" in result.tool_outcomes[0].output
