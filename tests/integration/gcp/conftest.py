"""Fixtures for the GCP adapters: the storage emulator, a fake Secret Manager, a clock.

They wrap plain context managers from ``fakegcp``, so the end-to-end
production tests can reuse either form.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from google.cloud.storage import Client

from assistant_service.adapters.config.gcs import GcsConfigRepository
from fakegcp.secret_manager import FakeSecretManager
from fakegcp.storage import storage_emulator

PROJECT = "test-project"


@pytest.fixture(scope="module")
def emulator_url(tmp_path_factory) -> Iterator[str]:
    """gcp-storage-emulator on a free port, in memory, for the module."""
    with storage_emulator(tmp_path_factory.mktemp("gcs")) as url:
        yield url


@pytest.fixture
def bucket_id(emulator_url, monkeypatch) -> str:
    """A fresh, empty bucket on the emulator; STORAGE_EMULATOR_HOST points at it.

    Our own clients get the client's background bucket-metadata threads switched
    off, so none outlives a test (the adapter does the same for its client).
    """
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", emulator_url)
    monkeypatch.setenv("DISABLE_GCS_PYTHON_CLIENT_OTEL_BUCKET_METADATA", "true")
    with Client(project=PROJECT) as client:
        return str(client.create_bucket(f"bucket-{uuid.uuid4().hex[:12]}").name)


@pytest.fixture
def storage_client(bucket_id) -> Iterator[Client]:
    """A storage client of our own, to look behind a repository's back."""
    with Client(project=PROJECT) as client:
        yield client


class Clock:
    """A clock the test moves: no sleeping for TTLs."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def gcs_repository(bucket_id, clock) -> Iterator[GcsConfigRepository]:
    # The client finds the emulator through STORAGE_EMULATOR_HOST, as in production.
    repository = GcsConfigRepository(
        client=Client(project=PROJECT), bucket_id=bucket_id, ttl=30.0, clock=clock
    )
    yield repository
    repository.close()


@pytest.fixture
def fake_secret_manager() -> Iterator[FakeSecretManager]:
    with FakeSecretManager() as fake:
        yield fake
