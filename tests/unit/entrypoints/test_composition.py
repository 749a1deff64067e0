"""The composition root in development: the demo assistant, offline unless a key is set."""

from __future__ import annotations

import pytest
import structlog.testing

from assistant_service.domain.errors import ConfigurationError
from assistant_service.entrypoints.composition import services_from_settings
from assistant_service.entrypoints.settings import LLMBackend, Settings, load_settings

pytestmark = pytest.mark.anyio


async def test_development_serves_the_demo_assistant_offline_and_says_so():
    with structlog.testing.capture_logs() as logs:
        services = await services_from_settings(load_settings({}))
    assert services.assistant.default_assistant_id == "demo"
    profile = await services.configs.get("demo")
    assert set(profile.tools) == {"demo.get_forecast", "demo.add", "demo.current_time"}
    assert services.required_secrets == ()
    [warning] = [entry for entry in logs if entry["event"] == "llm.offline"]
    assert warning["log_level"] == "warning"
    assert "OFFLINE" in warning["hint"]
    thread_id = await services.assistant.start_conversation()
    result = await services.assistant.chat(thread_id, "use add a=2 b=40")
    assert "42" in result.texts[0]


async def test_choosing_the_offline_backend_explicitly_is_quiet():
    with structlog.testing.capture_logs() as logs:
        await services_from_settings(Settings(llm_backend=LLMBackend.OFFLINE))
    assert not [entry for entry in logs if entry["event"] == "llm.offline"]


async def test_an_api_key_is_kept_as_a_secret_the_readiness_check_reads():
    settings = load_settings({"OPENAI_API_KEY": "sk-test-abcdef", "LLM_BACKEND": "offline"})
    services = await services_from_settings(settings)
    secret = await services.secrets.get("openai-api-key")
    assert secret.reveal() == "sk-test-abcdef"
    assert "sk-test-abcdef" not in repr(services)


async def test_assistant_id_names_the_default_assistant():
    services = await services_from_settings(load_settings({"ASSISTANT_ID": "demo"}))
    assert services.assistant.default_assistant_id == "demo"


async def test_an_unknown_assistant_id_stops_development_start_up():
    # Development holds every profile it serves: a typo is caught at once, not as a 404.
    with pytest.raises(ConfigurationError, match=r"ASSISTANT_ID=nobody: no such assistant"):
        await services_from_settings(load_settings({"ASSISTANT_ID": "nobody"}))


async def test_an_openai_backend_without_a_key_is_a_configuration_error():
    with pytest.raises(ConfigurationError, match="needs an API key: set OPENAI_API_KEY"):
        await services_from_settings(Settings(llm_backend=LLMBackend.CHAT))
