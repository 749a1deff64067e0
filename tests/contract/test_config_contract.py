"""One contract for every AssistantConfigRepository: memory, a local directory, a GCS bucket."""

from __future__ import annotations

import uuid

import pytest
from google.cloud.storage import Client

from assistant_service.adapters.config.gcs import GcsConfigRepository
from assistant_service.adapters.config.local import LocalDirectoryConfigRepository
from assistant_service.adapters.config.memory import InMemoryConfigRepository
from assistant_service.domain.errors import NotFoundError
from assistant_service.domain.models import AssistantProfile, RunLimits
from fakegcp.storage import storage_emulator

pytestmark = pytest.mark.anyio

FULL = AssistantProfile(
    id="weather",
    model="gpt-5-mini",
    instructions="Answer with the forecast.\nBe brief: \u00e9t\u00e9 \u2600",
    tools=("weather.get_forecast", "weather.current_time"),
    temperature=0.2,
    limits=RunLimits(max_tool_rounds=3, tool_timeout=2.5, max_message_length=4000),
    remote_id="asst_123",
)


@pytest.fixture(scope="module")
def emulator_url(tmp_path_factory):
    with storage_emulator(tmp_path_factory.mktemp("gcs")) as url:
        yield url


# "gcs" reaches the emulator through request.getfixturevalue: it carries the mark itself.
@pytest.fixture(params=["memory", "local", pytest.param("gcs", marks=pytest.mark.servers)])
def repository(request, tmp_path, monkeypatch):
    if request.param == "memory":
        yield InMemoryConfigRepository()
    elif request.param == "local":
        (tmp_path / "profiles").mkdir()
        yield LocalDirectoryConfigRepository(tmp_path / "profiles")
    else:
        # One emulator for the module, a fresh bucket for each test.
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", request.getfixturevalue("emulator_url"))
        client = Client(project="test")
        bucket = client.create_bucket(f"contract-{uuid.uuid4().hex[:12]}")
        repo = GcsConfigRepository(client=client, bucket_id=bucket.name, ttl=0)
        yield repo
        repo.close()


async def test_a_profile_put_is_got_back_equal(repository):
    await repository.put(FULL)
    assert await repository.get("weather") == FULL


async def test_defaults_round_trip(repository):
    minimal = AssistantProfile(id="min", model="m")
    await repository.put(minimal)
    assert await repository.get("min") == minimal


async def test_an_unknown_id_is_not_found(repository):
    with pytest.raises(NotFoundError) as caught:
        await repository.get("nobody")
    assert caught.value.kind == "assistant"
    assert caught.value.identifier == "nobody"


@pytest.mark.parametrize("assistant_id", ["../weather", "a/b", "", ".hidden"])
async def test_an_impossible_id_is_not_found(repository, assistant_id):
    await repository.put(FULL)
    with pytest.raises(NotFoundError):
        await repository.get(assistant_id)


async def test_put_replaces_the_profile_with_the_same_id(repository):
    await repository.put(FULL)
    changed = AssistantProfile(id="weather", model="gpt-5", tools=())
    await repository.put(changed)
    assert await repository.get("weather") == changed
    assert await repository.list() == [changed]


async def test_list_is_sorted_by_id(repository):
    assert await repository.list() == []
    for name in ["zeta", "alpha", "mid"]:
        await repository.put(AssistantProfile(id=name, model="m"))
    assert [p.id for p in await repository.list()] == ["alpha", "mid", "zeta"]
