"""production_repositories: the real clients, configured from the environment, against the fakes."""

from __future__ import annotations

import pytest

from assistant_service.adapters.config.gcs import GcsConfigRepository
from assistant_service.adapters.secrets.secret_manager import SecretManagerSecretRepository
from assistant_service.domain.errors import ConfigurationError
from assistant_service.domain.models import AssistantProfile
from assistant_service.entrypoints.composition import production_repositories

pytestmark = pytest.mark.anyio


def adapters(bucket, fake, **overrides):
    settings = {
        "project_id": "proj",
        "bucket_id": bucket,
        "secret_name": "openai-api-key",
        "secret_manager_endpoint": fake.endpoint,
        "config_ttl": 60.0,
        "secret_ttl": 300.0,
    } | overrides
    return production_repositories(**settings)


async def test_it_reads_profiles_from_the_bucket_and_the_key_from_secret_manager(
    bucket_id, fake_secret_manager
):
    fake_secret_manager.add_version("proj", "openai-api-key", "sk-prod")
    configs, secrets = adapters(bucket_id, fake_secret_manager)
    try:
        assert isinstance(configs, GcsConfigRepository)
        assert isinstance(secrets, SecretManagerSecretRepository)
        assert (configs.bucket_id, configs.ttl, secrets.ttl) == (bucket_id, 60.0, 300.0)
        await configs.put(AssistantProfile(id="weather", model="m"))
        assert [p.id for p in await configs.list()] == ["weather"]
        assert (await secrets.get("openai-api-key")).reveal() == "sk-prod"
    finally:
        configs.close()
        secrets.close()


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"project_id": ""}, "PROJECT_ID"),
        ({"bucket_id": ""}, "BUCKET_ID"),
        ({"secret_name": ""}, "secret name"),
        ({"project_id": "", "bucket_id": ""}, "PROJECT_ID, BUCKET_ID"),
    ],
)
def test_missing_settings_are_named(fake_secret_manager, overrides, named):
    with pytest.raises(ConfigurationError, match=named):
        adapters("bucket", fake_secret_manager, **overrides)


@pytest.mark.parametrize("endpoint", ["ftp://127.0.0.1:1", "http://", "https://:443"])
def test_a_bad_secret_manager_endpoint_is_refused(bucket_id, fake_secret_manager, endpoint):
    with pytest.raises(ConfigurationError, match="invalid Secret Manager endpoint"):
        adapters(bucket_id, fake_secret_manager, secret_manager_endpoint=endpoint)


def test_missing_credentials_are_a_configuration_error(monkeypatch, fake_secret_manager, tmp_path):
    # No emulator: the storage client looks for Application Default Credentials.
    monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "missing.json"))
    with pytest.raises(ConfigurationError, match="GOOGLE_APPLICATION_CREDENTIALS"):
        adapters("bucket", fake_secret_manager)


def test_https_endpoints_use_application_default_credentials(
    bucket_id, monkeypatch, fake_secret_manager, tmp_path
):
    # A TLS endpoint gets real credentials; with none to be found that is a clear error.
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "missing.json"))
    with pytest.raises(ConfigurationError, match="Secret Manager client"):
        adapters(bucket_id, fake_secret_manager, secret_manager_endpoint="https://127.0.0.1:1")
