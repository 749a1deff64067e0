"""The offline demo model and the embedding composition root."""

from __future__ import annotations

import json
import subprocess
import sys
import types

import pytest

from assistant_service import AssistantProfile, bootstrap, tool
from assistant_service.adapters.config.memory import InMemoryConfigRepository
from assistant_service.adapters.llm.scripted import ScriptedModel, split_into_deltas
from assistant_service.domain.errors import InvalidInputError, ToolRegistrationError
from assistant_service.domain.tools import OutcomeStatus

pytestmark = pytest.mark.anyio


def describe(city: str, mood: str | None = None, *, loud: bool = False) -> str:
    """Describe a city.

    Args:
        city: The city.
        mood: A mood, if any.
        loud: Shout it.
    """
    text = f"{city} feels {mood or 'fine'}"
    return text.upper() if loud else text


async def test_the_offline_model_calls_a_tool_named_by_its_short_name():
    service = bootstrap(tools={"places": [describe]})
    conversation = await service.start_conversation()

    result = await service.chat(conversation, 'please describe city="Buenos Aires" loud=true')

    (outcome,) = result.tool_outcomes
    assert json.loads(outcome.call.arguments) == {
        "city": "Buenos Aires",
        "loud": True,
        "mood": None,
    }
    assert outcome.output == "BUENOS AIRES FEELS FINE"
    assert result.texts == [
        "Here is what I found: places.describe returned BUENOS AIRES FEELS FINE."
    ]


async def test_the_offline_model_echoes_and_lists_its_tools_when_none_is_named():
    service = bootstrap(tools={"places": [describe]})
    result = await service.chat(await service.start_conversation(), "hello there")
    assert "places.describe" in result.texts[0]
    assert "'hello there'" in result.texts[0]
    assert result.tool_outcomes == ()


async def test_missing_required_arguments_reach_the_registry_as_an_error():
    service = bootstrap(tools={"places": [describe]})
    result = await service.chat(await service.start_conversation(), "describe it, mood=gray")
    assert result.tool_outcomes[0].status is OutcomeStatus.INVALID_ARGUMENTS


async def test_bootstrap_with_no_arguments_is_the_demo():
    service = bootstrap()
    profile = await service.profile()
    assert profile.id == "demo"
    assert "demo.get_forecast" in profile.tools
    result = await service.chat(await service.start_conversation(), "get_forecast city=Oslo")
    assert result.tool_outcomes[0].ok
    assert json.loads(result.tool_outcomes[0].output)[0]["day"] == 1


async def test_bootstrap_registers_a_modules_tools_and_defaults_to_the_only_profile():
    @tool
    def shout(text: str) -> str:
        """Shout."""
        return text.upper()

    module = types.ModuleType("loud_tools")
    module.shout = shout  # type: ignore[attr-defined]
    profile = AssistantProfile(id="loud", model="offline", tools=["loud.shout"])
    service = bootstrap(profiles=[profile], tools={"loud": module})
    result = await service.chat(await service.start_conversation(), "shout text=hey")
    assert result.tool_outcomes[0].output == "HEY"


async def test_bootstrap_with_several_profiles_needs_an_assistant_id():
    profiles = [AssistantProfile(id="a", model="m"), AssistantProfile(id="b", model="m")]
    service = bootstrap(profiles=profiles)
    with pytest.raises(InvalidInputError):
        await service.start_conversation()
    assert await service.start_conversation("b")


async def test_bootstrap_uses_the_adapters_it_is_given():
    model = ScriptedModel()
    configs = InMemoryConfigRepository.of(AssistantProfile(id="x", model="m"))
    service = bootstrap(model=model, configs=configs, default_assistant_id="x")
    await service.start_conversation()
    assert len(await model.store.items(await service.start_conversation())) == 0


def test_bootstrap_refuses_a_function_that_cannot_be_a_tool():
    def bad(*args: str) -> str:
        """Variadic."""
        return ""

    with pytest.raises(ToolRegistrationError, match="bad"):
        bootstrap(tools={"x": [bad]})


def test_deltas_split_on_words_and_join_back():
    text = "one two three four five"
    pieces = split_into_deltas(text)
    assert pieces == ("one two ", "three four ", "five")
    assert "".join(pieces) == text
    assert split_into_deltas("") == ()


async def test_the_offline_model_calls_at_most_three_tools():
    def first() -> str:
        """One."""
        return "1"

    def second() -> str:
        """Two."""
        return "2"

    def third() -> str:
        """Three."""
        return "3"

    def fourth() -> str:
        """Four."""
        return "4"

    service = bootstrap(tools={"n": [first, second, third, fourth]})
    result = await service.chat(await service.start_conversation(), "first second third fourth")
    assert [o.output for o in result.tool_outcomes] == ["1", "2", "3"]


async def test_the_offline_model_reports_usage_in_words():
    service = bootstrap(tools={"places": [describe]})
    result = await service.chat(await service.start_conversation(), "describe city=Rome")
    assert result.usage.input_tokens >= 2  # the message, then the tool output
    assert result.usage.output_tokens > 0


EMBEDDED = """
import logging, sys
from assistant_service import bootstrap
from assistant_service.adapters.llm.openai._client import log_upstream_call

if sys.argv[1:] == ["configured"]:
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(name)s %(message)s")
bootstrap()
log_upstream_call("responses.create", status=200)
"""


def test_embedding_configures_no_logging(tmp_path):
    # A fresh interpreter: structlog and logging as an embedding app finds them.
    script = tmp_path / "embedded.py"
    script.write_text(EMBEDDED, encoding="utf-8")
    quiet = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, check=False
    )
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (0, "", "")
    # An app that configures logging gets the adapters' events, through stdlib logging.
    asked = subprocess.run(
        [sys.executable, str(script), "configured"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert asked.returncode == 0, asked.stderr
    assert asked.stdout == ""
    assert asked.stderr.startswith("assistant_service.openai ")
    assert "openai.call" in asked.stderr
    assert "responses.create" in asked.stderr
