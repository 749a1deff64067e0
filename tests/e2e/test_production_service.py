"""The service in production mode, end to end, with nothing real outside 127.0.0.1.

Profiles come from a bucket on gcp-storage-emulator, the OpenAI key from a fake
Secret Manager, tools from the repository's spec directories, and the model is
the fake OpenAI server; Hypercorn serves the app on a real socket.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from google.cloud.storage import Client

from assistant_service.adapters.config.codec import profile_to_json
from assistant_service.domain.models import AssistantProfile, RunLimits
from assistant_service.entrypoints.composition import services_from_settings
from assistant_service.entrypoints.http.services import Services
from assistant_service.entrypoints.settings import Settings, load_settings
from fakegcp.secret_manager import FakeSecretManager
from fakegcp.storage import storage_emulator
from fakeopenai import FakeOpenAI, start_fake_openai
from fakeopenai import turns as t

pytestmark = pytest.mark.anyio

PROJECT = "prod-project"
SECRET_NAME = "openai-api-key"
FIRST_KEY = "sk-from-secret-manager-first-0001"
ROTATED_KEY = "sk-from-secret-manager-rotated-0002"
ASSISTANTS_DIR = Path(__file__).parents[2] / "assistants"

PROFILE = AssistantProfile(
    id="weather",
    model="gpt-from-the-bucket",
    instructions="Instructions that only the bucket holds.",
    tools=("weather.get_forecast",),
    temperature=0.2,
    limits=RunLimits(max_tool_rounds=2, tool_timeout=5.0),
)


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    fake = start_fake_openai()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def secret_manager() -> Iterator[FakeSecretManager]:
    with FakeSecretManager() as fake:
        fake.add_version(PROJECT, SECRET_NAME, FIRST_KEY)
        yield fake


@pytest.fixture
def bucket_id(tmp_path, monkeypatch) -> Iterator[str]:
    with storage_emulator(tmp_path) as url:
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", url)
        monkeypatch.setenv("DISABLE_GCS_PYTHON_CLIENT_OTEL_BUCKET_METADATA", "true")
        name = f"configs-{uuid.uuid4().hex[:12]}"
        with Client(project=PROJECT) as client:
            bucket = client.create_bucket(name)
            bucket.blob("assistants/weather.json").upload_from_string(
                profile_to_json(PROFILE), content_type="application/json"
            )
        yield name


@pytest.fixture
def settings(bucket_id, secret_manager, fake_openai) -> Settings:
    return load_settings(
        {
            "ENVIRONMENT": "production",
            "PROJECT_ID": PROJECT,
            "BUCKET_ID": bucket_id,
            "ASSISTANT_ID": "weather",
            "ASSISTANTS_DIR": str(ASSISTANTS_DIR),
            "SECRET_MANAGER_ENDPOINT": secret_manager.endpoint,
            "SECRET_CACHE_TTL": "0",  # every request reads the latest version
            "OPENAI_BASE_URL": fake_openai.base_url,
            "OPENAI_MAX_RETRIES": "0",
            "GRACEFUL_TIMEOUT": "2",
        }
    )


@pytest.fixture
async def services(settings) -> Services:
    # The composition root of production; the app closes its clients when it stops.
    return await services_from_settings(settings)


async def test_the_bucket_profile_and_the_secret_key_drive_a_run(server, http, fake_openai):
    start = await http.get("/start")
    assert start.status_code == 200
    thread_id = start.json()["thread_id"]
    fake_openai.responses.turn(
        t.calls(t.call("weather__get_forecast", '{"city": "Oslo", "days": 1}')),
        t.text("Oslo looks fine."),
    )

    chat = await http.post("/chat", json={"thread_id": thread_id, "message": "Oslo?"})

    assert chat.status_code == 200, chat.text
    body = chat.json()
    assert body["responses"] == ["Oslo looks fine."]
    assert [(c["name"], c["status"]) for c in body["tool_calls"]] == [
        ("weather.get_forecast", "ok")
    ]
    first, second = fake_openai.requests_to("responses.create")
    for request in (first, second):
        assert request.headers["authorization"] == f"Bearer {FIRST_KEY}"
        assert request.body["model"] == "gpt-from-the-bucket"
        assert request.body["instructions"] == "Instructions that only the bucket holds."
        assert request.body["temperature"] == 0.2
        assert [tool["name"] for tool in request.body["tools"]] == ["weather__get_forecast"]
    # The tool ran from the spec directory's code: its output went back to the model.
    outputs = [i for i in second.body["input"] if i.get("type") == "function_call_output"]
    forecast = json.loads(outputs[0]["output"])
    assert forecast[0]["day"] == 1
    [conversation] = fake_openai.requests_to("conversations.create")
    assert conversation.body["metadata"]["assistant_id"] == "weather"


async def test_a_rotated_key_is_used_once_its_cache_expires(
    server, http, fake_openai, secret_manager
):
    thread_id = (await http.get("/start")).json()["thread_id"]
    fake_openai.responses.turn(t.text("one"), t.text("two"))
    assert (
        await http.post("/chat", json={"thread_id": thread_id, "message": "a"})
    ).status_code == 200

    secret_manager.add_version(PROJECT, SECRET_NAME, ROTATED_KEY)
    assert (
        await http.post("/chat", json={"thread_id": thread_id, "message": "b"})
    ).status_code == 200

    keys = [r.headers["authorization"] for r in fake_openai.requests_to("responses.create")]
    assert keys == [f"Bearer {FIRST_KEY}", f"Bearer {ROTATED_KEY}"]


async def test_readiness_reads_the_bucket_and_the_secret(server, http, secret_manager):
    assert (await http.get("/readyz")).status_code == 200
    secret_manager.deny(PROJECT, SECRET_NAME)
    ready = await http.get("/readyz")
    assert ready.status_code == 503
    assert FIRST_KEY not in ready.text
