"""The service composed from settings (LLM_BACKEND=responses) runs on the Responses adapter."""

from __future__ import annotations

import pytest

from assistant_service.entrypoints.composition import services_from_settings
from assistant_service.entrypoints.settings import load_settings
from fakeopenai import API_KEY
from fakeopenai import turns as t

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("state", ["conversations", "local"])
async def test_settings_select_the_responses_adapter_and_its_state(fake_openai, state):
    settings = load_settings(
        {
            "OPENAI_API_KEY": API_KEY,
            "OPENAI_BASE_URL": fake_openai.base_url,
            "LLM_BACKEND": "responses",
            "RESPONSES_STATE": state,
            "OPENAI_MAX_RETRIES": "0",
        }
    )
    services = await services_from_settings(settings)
    (close_client,) = services.closers
    try:
        fake_openai.responses.turn(t.text("Composed."))
        conversation_id = await services.assistant.start_conversation()
        result = await services.assistant.chat(conversation_id, "hello")
        assert result.texts == ["Composed."]
        [request] = fake_openai.requests_to("responses.create")
        assert request.headers["authorization"] == f"Bearer {API_KEY}"
        assert ("conversation" in request.body) is (state == "conversations")
    finally:
        await close_client()
