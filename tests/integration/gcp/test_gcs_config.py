"""The GCS config adapter against gcp-storage-emulator: cache, bad objects, failures."""

from __future__ import annotations

import json

import pytest
from google.cloud.storage import Client

from assistant_service.adapters.config.codec import profile_to_dict
from assistant_service.adapters.config.gcs import GcsConfigRepository
from assistant_service.domain.errors import (
    ConfigurationError,
    NotFoundError,
    UpstreamUnavailableError,
)
from assistant_service.domain.models import AssistantProfile
from fakegcp._http import closed_port_url, error_server

pytestmark = pytest.mark.anyio

PROFILE = AssistantProfile(id="weather", model="gpt-5-mini", tools=("weather.get_forecast",))


def upload(client: Client, bucket_id: str, name: str, data: str) -> None:
    client.bucket(bucket_id).blob(name).upload_from_string(data, content_type="application/json")


async def test_profiles_are_json_objects_under_assistants(
    gcs_repository, storage_client, bucket_id
):
    await gcs_repository.put(PROFILE)
    blob = storage_client.bucket(bucket_id).get_blob("assistants/weather.json")
    assert blob.content_type == "application/json"
    assert json.loads(blob.download_as_bytes()) == profile_to_dict(PROFILE)


async def test_get_is_served_from_the_cache_until_the_ttl_passes(
    gcs_repository, storage_client, bucket_id, clock
):
    await gcs_repository.put(PROFILE)
    changed = AssistantProfile(id="weather", model="gpt-5")
    upload(
        storage_client, bucket_id, "assistants/weather.json", json.dumps(profile_to_dict(changed))
    )
    clock.advance(29)
    assert await gcs_repository.get("weather") == PROFILE
    clock.advance(1)
    assert await gcs_repository.get("weather") == changed


async def test_a_missing_profile_is_remembered_until_put(
    gcs_repository, storage_client, bucket_id, clock
):
    with pytest.raises(NotFoundError):
        await gcs_repository.get("weather")
    upload(
        storage_client, bucket_id, "assistants/weather.json", json.dumps(profile_to_dict(PROFILE))
    )
    with pytest.raises(NotFoundError):
        await gcs_repository.get("weather")  # still cached as missing
    clock.advance(30)
    assert await gcs_repository.get("weather") == PROFILE
    await gcs_repository.put(AssistantProfile(id="other", model="m"))
    assert (await gcs_repository.get("other")).model == "m"


async def test_the_listing_is_cached_and_put_refreshes_it(
    gcs_repository, storage_client, bucket_id
):
    await gcs_repository.put(PROFILE)
    assert [p.id for p in await gcs_repository.list()] == ["weather"]
    upload(
        storage_client,
        bucket_id,
        "assistants/behind.json",
        json.dumps({"id": "behind", "model": "m"}),
    )
    assert [p.id for p in await gcs_repository.list()] == ["weather"]
    await gcs_repository.put(AssistantProfile(id="alpha", model="m"))
    assert [p.id for p in await gcs_repository.list()] == ["alpha", "behind", "weather"]


async def test_list_ignores_other_objects(gcs_repository, storage_client, bucket_id):
    await gcs_repository.put(PROFILE)
    upload(storage_client, bucket_id, "assistants/README.txt", "not a profile")
    upload(storage_client, bucket_id, "assistants/old/weather.json", "{}")
    upload(storage_client, bucket_id, "elsewhere.json", "{}")
    assert await gcs_repository.list() == [PROFILE]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('{"id": "weather", "model": "m", "tools": "get_forecast"}', "tools: expected a list"),
        ('{"id": "weather", "model": "m", "limits": {"max_tool_rounds": 0}}', "limits:"),
        ('{"id": "weather", "model": "m", "colour": "red"}', "unknown field(s): colour"),
        ('{"id": "weather", "model": "m",', "not valid JSON"),
        ('{"id": "other", "model": "m"}', "id: 'other' does not match"),
    ],
)
async def test_a_malformed_profile_names_the_object_and_the_field(
    gcs_repository, storage_client, bucket_id, content, expected
):
    upload(storage_client, bucket_id, "assistants/weather.json", content)
    for attempt in (gcs_repository.get("weather"), gcs_repository.list()):
        with pytest.raises(ConfigurationError) as caught:
            await attempt
        message = str(caught.value)
        assert message.startswith(f"gs://{bucket_id}/assistants/weather.json: ")
        assert expected in message
        assert "Traceback" not in message


async def test_a_missing_bucket_is_a_configuration_error(emulator_url, monkeypatch):
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", emulator_url)
    repository = GcsConfigRepository(client=Client(project="p"), bucket_id="no-such-bucket")
    try:
        with pytest.raises(ConfigurationError, match="bucket 'no-such-bucket' not found"):
            await repository.list()
    finally:
        repository.close()


async def test_permission_denied_is_a_configuration_error_saying_what_to_grant(monkeypatch):
    with error_server(403) as server:
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", server.url)
        repository = GcsConfigRepository(client=Client(project="p"), bucket_id="b")
        try:
            with pytest.raises(ConfigurationError, match=r"^gs://b/assistants/: permission denied"):
                await repository.list()
            with pytest.raises(
                ConfigurationError, match=r"assistants/weather.json: .*objectViewer"
            ):
                await repository.get("weather")
            with pytest.raises(ConfigurationError, match=r"assistants/weather.json: .*objectUser"):
                await repository.put(PROFILE)
        finally:
            repository.close()


async def test_rejected_credentials_are_a_configuration_error(monkeypatch):
    # Listing only: on a 401, google-auth refreshes and retries, dropping the first
    # response unclosed; for a streamed download that leaks the socket (not ours to fix).
    with error_server(401) as server:
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", server.url)
        repository = GcsConfigRepository(client=Client(project="p"), bucket_id="b")
        try:
            with pytest.raises(ConfigurationError, match="credentials missing or rejected"):
                await repository.list()
        finally:
            repository.close()


async def test_an_unreachable_storage_is_upstream_unavailable(monkeypatch):
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", closed_port_url())
    repository = GcsConfigRepository(
        client=Client(project="p"), bucket_id="b", timeout=1.0, retry_timeout=0.3
    )
    try:
        with pytest.raises(UpstreamUnavailableError, match="Cloud Storage unavailable"):
            await repository.get("weather")
        with pytest.raises(UpstreamUnavailableError):
            await repository.list()
    finally:
        repository.close()


async def test_server_errors_are_retried_then_upstream_unavailable(monkeypatch):
    with error_server(503, "overloaded") as server:
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", server.url)
        repository = GcsConfigRepository(
            client=Client(project="p"), bucket_id="b", retry_timeout=0.3
        )
        try:
            with pytest.raises(UpstreamUnavailableError, match="overloaded"):
                await repository.list()
        finally:
            repository.close()
