"""A first run with a real key: the service composed from settings against the fake OpenAI.

The demo assistant sends DEFAULT_MODEL upstream, never "offline"; ASSISTANT_ID
picks a spec-directory profile; the Assistants backend runs a remote assistant
as the server has it, or pushes the profiles that have none, and ``/start``
never answers 500.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from assistant_service.domain.errors import ConfigurationError, UpstreamError
from assistant_service.entrypoints.composition import services_from_settings
from assistant_service.entrypoints.http.app import create_app
from assistant_service.entrypoints.http.services import Services
from assistant_service.entrypoints.settings import DEFAULT_MODEL, load_settings
from fakeopenai import API_KEY, FakeOpenAI
from fakeopenai import turns as t
from fakeopenai.assistants import call, calls, reply

pytestmark = pytest.mark.anyio

ASSISTANTS_DIR = str(Path(__file__).parents[2] / "assistants")


@pytest.fixture
def composed(fake_openai: FakeOpenAI) -> Callable[..., Any]:
    """``async with composed(VAR=value, ...) as services``: the service of those settings."""

    @asynccontextmanager
    async def compose(**environ: str) -> AsyncIterator[Services]:
        base = {
            "OPENAI_API_KEY": API_KEY,
            "OPENAI_BASE_URL": fake_openai.base_url,
            "OPENAI_MAX_RETRIES": "0",
        }
        services = await services_from_settings(load_settings({**base, **environ}))
        try:
            yield services
        finally:
            for close in services.closers:
                await close()

    return compose


@pytest.fixture
def assistants(fake_openai: FakeOpenAI) -> Any:
    return fake_openai.extensions["assistants"]


# Item 1: a key just works.


async def test_the_readme_docker_line_sends_default_model_not_offline(fake_openai, composed):
    # docker run -e OPENAI_API_KEY: development, a key, the image's ASSISTANTS_DIR.
    async with composed(ASSISTANTS_DIR=ASSISTANTS_DIR, PORT="8000") as services:
        fake_openai.responses.turn(t.text("Hello from OpenAI."))
        conversation_id = await services.assistant.start_conversation()
        result = await services.assistant.chat(conversation_id, "hello")
    assert result.texts == ["Hello from OpenAI."]
    [request] = fake_openai.requests_to("responses.create")
    assert request.body["model"] == DEFAULT_MODEL == "gpt-4.1-mini"


@pytest.mark.parametrize("backend", ["responses", "chat"])
async def test_default_model_is_the_demo_assistants_model(fake_openai, composed, backend):
    async with composed(LLM_BACKEND=backend, DEFAULT_MODEL="gpt-custom") as services:
        profile = await services.configs.get("demo")
    assert profile.model == "gpt-custom"


async def test_assistant_id_picks_a_spec_directory_profile(fake_openai, composed):
    async with composed(ASSISTANTS_DIR=ASSISTANTS_DIR, ASSISTANT_ID="weather") as services:
        fake_openai.responses.turn(t.text("Sunny."))
        conversation_id = await services.assistant.start_conversation()
        await services.assistant.chat(conversation_id, "weather?")
    [request] = fake_openai.requests_to("responses.create")
    assert request.body["model"] == "gpt-5-mini"
    assert request.body["tools"][0]["name"] == "weather__get_forecast"


async def test_an_unknown_assistant_id_stops_start_up_naming_the_known_ones(composed):
    with pytest.raises(ConfigurationError, match=r"ASSISTANT_ID=wether: .*demo, weather"):
        async with composed(ASSISTANTS_DIR=ASSISTANTS_DIR, ASSISTANT_ID="wether"):
            pass


# Item 2: the Assistants backend as the original service ran it.


def remote_assistant(assistants: Any, *tool_names: str, assistant_id: str = "asst_original"):
    """A remote assistant made on the server, as the original service's operators made them."""
    tools = [
        {"type": "function", "function": {"name": n, "parameters": {"type": "object"}}}
        for n in tool_names
    ]
    return assistants.create_assistant(
        {"model": "gpt-4o", "instructions": "You are the original.", "tools": tools},
        assistant_id=assistant_id,
    )


async def test_assistant_id_runs_the_remote_assistant_as_the_server_has_it(
    fake_openai, assistants, composed
):
    made = remote_assistant(assistants, "get_forecast")
    made["tools"].append({"type": "code_interpreter"})  # runs on the server: not ours to match
    assistants.play(
        calls(call("get_forecast", '{"city": "Lisbon", "days": 1}', "call_1")),
        reply("Sunny in Lisbon."),
    )
    async with composed(LLM_BACKEND="assistants", ASSISTANT_ID="asst_original") as services:
        profile = await services.configs.get("asst_original")
        conversation_id = await services.assistant.start_conversation()
        result = await services.assistant.chat(conversation_id, "weather in Lisbon?")
    assert (profile.model, profile.instructions) == ("gpt-4o", "You are the original.")
    assert profile.tools == ("demo.get_forecast",)
    assert result.texts == ["Sunny in Lisbon."]
    [outcome] = result.tool_outcomes
    assert (outcome.call.name, outcome.ok) == ("demo.get_forecast", True)
    [run] = [r.body for r in fake_openai.requests_to("runs.create")]
    # As configured on the server: no model, instructions or tools override it.
    assert run.keys() == {"assistant_id", "stream"}
    assert run["assistant_id"] == "asst_original"
    assert not fake_openai.requests_to("assistants.create")


async def test_remote_tools_no_local_function_matches_stop_start_up_naming_them(
    assistants, composed
):
    remote_assistant(assistants, "get_forecast", "book_flight", "demo__refund")
    with pytest.raises(ConfigurationError, match="no local tool for book_flight, demo__refund"):
        async with composed(LLM_BACKEND="assistants", ASSISTANT_ID="asst_original"):
            pass


async def test_an_assistant_id_the_server_does_not_know_stops_start_up(composed):
    with pytest.raises(ConfigurationError, match="ASSISTANT_ID=asst_nope: the server knows no"):
        async with composed(LLM_BACKEND="assistants", ASSISTANT_ID="asst_nope"):
            pass


async def test_development_pushes_profiles_without_a_remote_assistant_once(
    fake_openai, assistants, composed
):
    assistants.play(reply("Hi."))
    environ = {"LLM_BACKEND": "assistants", "ASSISTANTS_DIR": ASSISTANTS_DIR}
    async with composed(**environ) as services:
        conversation_id = await services.assistant.start_conversation()
        assert (await services.assistant.chat(conversation_id, "hi")).texts == ["Hi."]
        demo = await services.configs.get("demo")
    pushed = {a["metadata"]["assistant_service_id"]: a for a in assistants.assistants.values()}
    assert set(pushed) == {"demo", "weather"}
    assert pushed["demo"]["model"] == DEFAULT_MODEL
    assert demo.remote_id == pushed["demo"]["id"]
    async with composed(**environ):  # a restart updates them, never makes more
        pass
    assert len(assistants.assistants) == 2
    assert len(fake_openai.requests_to("assistants.create")) == 2


async def test_without_auto_push_start_up_refuses_with_the_command_to_run(assistants, composed):
    environ = {
        "LLM_BACKEND": "assistants",
        "ASSISTANTS_DIR": ASSISTANTS_DIR,
        "ASSISTANT_ID": "weather",
        "ASSISTANTS_AUTO_PUSH": "false",
    }
    with pytest.raises(ConfigurationError) as raised:
        async with composed(**environ):
            pass
    assert "assistant-service assistants push" in raised.value.message
    assert f"{ASSISTANTS_DIR}/weather --backend assistants" in raised.value.message
    assert not assistants.assistants


async def test_the_development_server_reads_remote_ids_from_config_dir(
    fake_openai, assistants, composed, tmp_path
):
    # What `assistants push assistants/weather --to local:DIR --backend assistants` leaves.
    assistants.create_assistant({"model": "gpt-5-mini"}, assistant_id="asst_pushed")
    stored = {"id": "weather", "model": "gpt-5-mini", "remote_id": "asst_pushed"}
    (tmp_path / "weather.json").write_text(json.dumps(stored))
    assistants.play(reply("Sunny."))
    environ = {
        "LLM_BACKEND": "assistants",
        "ASSISTANTS_DIR": ASSISTANTS_DIR,
        "ASSISTANT_ID": "weather",
        "CONFIG_DIR": str(tmp_path),
        "ASSISTANTS_AUTO_PUSH": "off",
    }
    async with composed(**environ) as services:
        conversation_id = await services.assistant.start_conversation()
        await services.assistant.chat(conversation_id, "weather?")
    [run] = [r.body for r in fake_openai.requests_to("runs.create")]
    assert run["assistant_id"] == "asst_pushed"


async def test_a_remote_assistant_the_server_forgot_is_an_upstream_error_naming_it(
    assistants, composed
):
    async with composed(LLM_BACKEND="assistants") as services:
        demo = await services.configs.get("demo")
        del assistants.assistants[demo.remote_id]  # deleted on the server since start-up
        conversation_id = await services.assistant.start_conversation()
        with pytest.raises(UpstreamError, match=f"knows no assistant '{demo.remote_id}'"):
            await services.assistant.chat(conversation_id, "hi")


async def test_over_http_start_answers_and_a_forgotten_assistant_is_a_502(assistants, composed):
    async with composed(LLM_BACKEND="assistants") as services:
        app = create_app(services)
        async with app.test_app():
            client = app.test_client()
            started = await client.get("/start")
            assert started.status_code == 200
            thread_id = (await started.get_json())["thread_id"]
            assistants.assistants.clear()
            answer = await client.post("/chat", json={"thread_id": thread_id, "message": "hi"})
            body = await answer.get_json()
    assert answer.status_code == 502
    assert body["error"]["code"] == "upstream_error"
    assert "knows no assistant 'asst_" in body["error"]["message"]
