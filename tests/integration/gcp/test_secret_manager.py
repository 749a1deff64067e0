"""The Secret Manager adapter through its real client against the loopback fake."""

from __future__ import annotations

import base64
import logging

import anyio
import pytest

from assistant_service.adapters.secrets.secret_manager import (
    TRANSPORT_LOGGER,
    SecretManagerSecretRepository,
)
from assistant_service.domain.errors import (
    ConfigurationError,
    NotFoundError,
    UpstreamError,
    UpstreamUnavailableError,
)
from fakegcp._http import closed_port_url

pytestmark = pytest.mark.anyio

PROJECT = "proj"
VALUE = "sk-live-abcdef123456"


@pytest.fixture
def repository(fake_secret_manager, clock):
    base = SecretManagerSecretRepository.from_environment(
        project_id=PROJECT, endpoint=fake_secret_manager.endpoint
    )
    repository = SecretManagerSecretRepository(
        client=base.client, project_id=PROJECT, ttl=60.0, retry_timeout=0.3, clock=clock
    )
    yield repository
    repository.close()


async def test_it_reads_the_latest_version_and_sends_no_credentials_over_http(
    repository, fake_secret_manager
):
    fake_secret_manager.add_version(PROJECT, "openai-api-key", "old")
    fake_secret_manager.add_version(PROJECT, "openai-api-key", VALUE)
    assert (await repository.get("openai-api-key")).reveal() == VALUE
    request = fake_secret_manager.requests[-1]
    assert request.path.startswith(
        f"/v1/projects/{PROJECT}/secrets/openai-api-key/versions/latest:access"
    )
    assert "authorization" not in {key.lower() for key in request.headers}


async def test_a_rotated_secret_is_picked_up_once_the_ttl_passes(
    repository, fake_secret_manager, clock
):
    fake_secret_manager.add_version(PROJECT, "openai-api-key", "first")
    assert (await repository.get("openai-api-key")).reveal() == "first"
    fake_secret_manager.add_version(PROJECT, "openai-api-key", "second")
    clock.advance(59)
    assert (await repository.get("openai-api-key")).reveal() == "first"
    assert fake_secret_manager.access_count == 1
    clock.advance(1)
    assert (await repository.get("openai-api-key")).reveal() == "second"
    assert fake_secret_manager.access_count == 2


async def test_a_trailing_newline_is_dropped(repository, fake_secret_manager):
    fake_secret_manager.add_version(PROJECT, "k", VALUE + "\n")
    assert (await repository.get("k")).reveal() == VALUE


async def test_permission_denied_names_the_secret_not_its_value(repository, fake_secret_manager):
    fake_secret_manager.add_version(PROJECT, "openai-api-key", VALUE)
    fake_secret_manager.deny(PROJECT, "openai-api-key")
    with pytest.raises(ConfigurationError) as caught:
        await repository.get("openai-api-key")
    message = str(caught.value)
    assert "openai-api-key" in message
    assert "secretAccessor" in message
    assert VALUE not in message


async def test_a_missing_secret_is_not_found(repository):
    with pytest.raises(NotFoundError, match="'nope'"):
        await repository.get("nope")


async def test_an_impossible_name_never_reaches_the_server(repository, fake_secret_manager):
    with pytest.raises(NotFoundError):
        await repository.get("../../other/secret")
    assert fake_secret_manager.requests == []


async def test_unavailable_is_retried_then_reported(repository, fake_secret_manager):
    fake_secret_manager.unavailable = True
    with pytest.raises(UpstreamUnavailableError, match="secret 'k': Secret Manager unavailable"):
        await repository.get("k")
    assert fake_secret_manager.access_count >= 1


async def test_a_checksum_mismatch_is_an_upstream_error(repository, fake_secret_manager):
    fake_secret_manager.corrupt_checksums = True
    fake_secret_manager.add_version(PROJECT, "k", VALUE)
    with pytest.raises(UpstreamError, match="checksum") as caught:
        await repository.get("k")
    assert VALUE not in str(caught.value)


async def test_non_utf8_secrets_are_a_configuration_error(repository, fake_secret_manager):
    fake_secret_manager.add_version(PROJECT, "k", b"\xff\xfe")
    with pytest.raises(ConfigurationError, match="not UTF-8"):
        await repository.get("k")


async def test_an_unreachable_endpoint_is_upstream_unavailable():
    repository = SecretManagerSecretRepository.from_environment(
        project_id=PROJECT, endpoint=closed_port_url()
    )
    repository.retry_timeout = 0.2
    try:
        with pytest.raises(UpstreamUnavailableError):
            await repository.get("k")
    finally:
        repository.close()


async def test_concurrent_misses_make_one_request_and_never_block_the_loop(
    repository, fake_secret_manager
):
    fake_secret_manager.add_version(PROJECT, "k", VALUE)
    fake_secret_manager.delay = 0.2
    ticks = []
    values = []

    async def tick():
        # Runs only if the client's blocking call is off the event loop.
        for _ in range(10):
            ticks.append(1)
            await anyio.sleep(0.01)

    async def read():
        values.append((await repository.get("k")).reveal())

    async with anyio.create_task_group() as group:
        group.start_soon(tick)
        for _ in range(5):
            group.start_soon(read)
    assert values == [VALUE] * 5
    assert fake_secret_manager.access_count == 1
    assert len(ticks) == 10


async def test_no_log_record_carries_the_value_even_at_debug(repository, fake_secret_manager):
    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record)

    handler = Keep(logging.DEBUG)
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        fake_secret_manager.add_version(PROJECT, "k", VALUE)
        assert (await repository.get("k")).reveal() == VALUE
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
    encoded = base64.b64encode(VALUE.encode()).decode()
    for record in records:
        text = repr(record.__dict__)
        assert VALUE not in text
        assert encoded not in text


def test_the_transport_s_response_record_of_a_secret_access_is_dropped():
    logger = logging.getLogger(TRANSPORT_LOGGER)

    def record(**extra):
        made = logger.makeRecord(
            logger.name, logging.DEBUG, __file__, 1, "m", (), None, extra=extra
        )
        return logger.filter(made)

    assert not record(rpcName="AccessSecretVersion", httpResponse={"payload": {"data": "c2s="}})
    assert record(rpcName="AccessSecretVersion", httpRequest={"url": "..."})
    assert record(rpcName="GetSecret", httpResponse={"payload": {}})
