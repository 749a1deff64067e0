"""One contract for every SecretRepository: memory, the environment, Secret Manager."""

from __future__ import annotations

import pytest

from assistant_service.adapters.secrets.memory import (
    EnvironmentSecretRepository,
    InMemorySecretRepository,
)
from assistant_service.adapters.secrets.secret_manager import SecretManagerSecretRepository
from assistant_service.domain.errors import NotFoundError
from fakegcp.secret_manager import FakeSecretManager

pytestmark = pytest.mark.anyio

VALUES = {"openai-api-key": "sk-test-0123456789", "db-password": "p@ss w0rd"}


@pytest.fixture(params=["memory", "environment", "secret-manager"])
def repository(request):
    if request.param == "memory":
        yield InMemorySecretRepository(values=VALUES)
    elif request.param == "environment":
        yield EnvironmentSecretRepository(
            environ={"OPENAI_API_KEY": VALUES["openai-api-key"], "DB_PASSWORD": "p@ss w0rd"}
        )
    else:
        with FakeSecretManager() as fake:
            for name, value in VALUES.items():
                fake.add_version("proj", name, value)
            repo = SecretManagerSecretRepository.from_environment(
                project_id="proj", endpoint=fake.endpoint
            )
            try:
                yield repo
            finally:
                repo.close()


async def test_a_known_secret_reveals_its_value(repository):
    secret = await repository.get("openai-api-key")
    assert secret.name == "openai-api-key"
    assert secret.reveal() == "sk-test-0123456789"
    assert (await repository.get("db-password")).reveal() == "p@ss w0rd"


async def test_the_secret_never_prints_its_value(repository):
    secret = await repository.get("openai-api-key")
    for text in (repr(secret), str(secret), f"{secret}", repr(repository)):
        assert "sk-test" not in text


async def test_an_unknown_secret_is_not_found_by_name(repository):
    with pytest.raises(NotFoundError) as caught:
        await repository.get("missing-secret")
    assert caught.value.kind == "secret"
    assert "missing-secret" in str(caught.value)
