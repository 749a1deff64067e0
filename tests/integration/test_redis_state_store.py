"""The Redis state store when Redis goes away, comes back, or refuses a password.

Each test runs its own redis-server (it stops it): the contract suite's shared
one stays up. The server stops and starts in a worker thread, so the event loop
runs meanwhile, as a service's loop does while Redis fails over.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timezone

import anyio
import pytest

pytest.importorskip("redis")

from assistant_service.adapters.state.redis import RedisStateStore
from assistant_service.domain.errors import (
    ConfigurationError,
    StateStoreUnavailableError,
    UpstreamUnavailableError,
)
from assistant_service.domain.models import Conversation
from assistant_service.domain.runs import RunRecord
from assistant_service.domain.secrets import Secret
from support.servers import RedisServer, ServerMissingError, skip_or_fail

# Each test starts its own redis-server: a server test (see tests/conftest.py).
pytestmark = [pytest.mark.anyio, pytest.mark.servers]

CONVERSATION = Conversation("conv_1", "assistant-1", datetime(2026, 11, 1, tzinfo=timezone.utc))
SERVER_PASSWORD = "server-side-pass-7f3a"


def started(server: RedisServer) -> RedisServer:
    try:
        server.start()
    except ServerMissingError as error:
        skip_or_fail(error)
    return server


@pytest.fixture
def server() -> Iterator[RedisServer]:
    redis = started(RedisServer())
    try:
        yield redis
    finally:
        redis.stop()


@pytest.fixture
def guarded_server() -> Iterator[RedisServer]:
    redis = started(RedisServer(password=SERVER_PASSWORD))
    try:
        yield redis
    finally:
        redis.stop()


def every_call(store: RedisStateStore, lease):
    return {
        "ping": store.ping(),
        "create": store.create(Conversation("conv_2", "assistant-1", CONVERSATION.created_at)),
        "get": store.get("conv_1"),
        "items": store.items("conv_1"),
        "append": store.append("conv_1", [{"n": 2}]),
        "fenced append": store.append("conv_1", [{"n": 2}], fence=lease),
        "acquire": store.acquire("conv_3", "run-2", 5),
        "renew": store.renew(lease),
        "release": store.release(lease),
        "remember": store.remember("conv_1", ["call_a"]),
        "take": store.take("conv_1"),
        "append events": store.append_events("run_1", [{"seq": 1}]),
        "read events": store.read_events("run_1"),
        "wait for events": store.read_events("run_1", wait=0.5),
        "expire events": store.expire_events("run_1", 5),
        "save run": store.save_run(RunRecord("run_1", "conv_1"), 5),
        "load run": store.load_run("run_1"),
        "latest run": store.latest_run("conv_1"),
        "request cancel": store.request_cancel("run_1", 5),
        "cancel requested": store.cancel_requested("run_1"),
    }


async def test_calls_fail_as_unavailable_while_redis_is_down_and_work_once_it_is_back(server):
    store = RedisStateStore.from_url(server.url, timeout=1.0)
    try:
        await store.create(CONVERSATION)
        lease = await store.acquire("conv_1", "run-1", 5)
        await store.append("conv_1", [{"n": 1}], fence=lease)

        await anyio.to_thread.run_sync(server.stop)
        for name, call in every_call(store, lease).items():
            with pytest.raises(StateStoreUnavailableError) as raised:
                await call
            error = raised.value
            assert f"127.0.0.1:{server.port}" in error.message, name
            assert isinstance(error, UpstreamUnavailableError)
            assert error.code == "state_store_unavailable"
            # Not chained: no redis-py exception rides along into logs.
            assert error.__cause__ is None
            assert error.__suppress_context__

        # The same port; without persistence the data went with the server.
        await anyio.to_thread.run_sync(server.start)
        await store.ping()
        await store.create(CONVERSATION)  # a script: loaded again after the restart
        fresh = await store.acquire("conv_1", "run-2", 5)
        await store.append("conv_1", [{"n": 3}], fence=fresh)
        assert await store.items("conv_1") == [{"n": 3}]
    finally:
        await store.aclose()


async def test_a_store_survives_a_restart_it_did_not_see(server):
    # Pooled connections die with the server; the next call reconnects.
    store = RedisStateStore.from_url(server.url, timeout=1.0)
    try:
        await store.ping()
        await anyio.to_thread.run_sync(server.stop)
        await anyio.to_thread.run_sync(server.start)
        await store.create(CONVERSATION)
        assert await store.get("conv_1") == CONVERSATION
    finally:
        await store.aclose()


@pytest.mark.parametrize("socket_timeout", [0.2, 0.6])  # polling, blocking in slices
async def test_a_read_waits_longer_than_the_socket_timeout_without_tripping_it(
    server, socket_timeout
):
    store = RedisStateStore.from_url(server.url, timeout=socket_timeout)
    try:
        started = time.monotonic()
        assert await store.read_events("run_1", wait=0.7) == []
        assert 0.65 <= time.monotonic() - started < 2.0
        started = time.monotonic()
        found: list = []

        async def read() -> None:
            found.extend(await store.read_events("run_1", wait=5.0))

        async with anyio.create_task_group() as group:
            group.start_soon(read)
            await anyio.sleep(0.5)  # the reader is past its first slice
            await store.append_events("run_1", [{"seq": 1}])
        assert found == [{"seq": 1}]
        assert time.monotonic() - started < 1.5
    finally:
        await store.aclose()


async def test_a_cancelled_wait_leaves_the_store_working(server):
    store = RedisStateStore.from_url(server.url, timeout=1.0)
    try:
        with anyio.move_on_after(0.1):
            await store.read_events("run_1", wait=0.8)
        # The connection that was blocked is not handed out again mid-reply.
        await store.append_events("run_1", [{"seq": 1}])
        assert await store.read_events("run_1") == [{"seq": 1}]
        assert await store.cancel_requested("run_1") is False
    finally:
        await store.aclose()


async def test_a_password_in_the_url_never_shows_in_an_error(guarded_server):
    url = f"redis://:url-password-91c2@127.0.0.1:{guarded_server.port}/0"
    store = RedisStateStore.from_url(url, timeout=1.0)
    try:
        with pytest.raises(StateStoreUnavailableError) as refused:
            await store.ping()
        await anyio.to_thread.run_sync(guarded_server.stop)
        with pytest.raises(StateStoreUnavailableError) as down:
            await store.ping()
    finally:
        await store.aclose()
    for error in (refused.value, down.value):
        assert "url-password-91c2" not in str(error)
        assert "url-password-91c2" not in repr(error)


async def test_a_secret_password_opens_the_store_and_a_wrong_one_never_shows(guarded_server):
    good = RedisStateStore.from_url(
        guarded_server.url, password=Secret("redis-password", SERVER_PASSWORD)
    )
    wrong = RedisStateStore.from_url(
        guarded_server.url, password=Secret("redis-password", "wrong-secret-5d1e"), timeout=1.0
    )
    try:
        await good.create(CONVERSATION)
        assert await good.get("conv_1") == CONVERSATION
        with pytest.raises(StateStoreUnavailableError) as refused:
            await wrong.get("conv_1")
    finally:
        await good.aclose()
        await wrong.aclose()
    assert "wrong-secret-5d1e" not in str(refused.value)


def test_a_url_redis_cannot_use_is_a_configuration_error_without_its_password():
    with pytest.raises(ConfigurationError) as bad:
        RedisStateStore.from_url("http://:pw-in-bad-url-77@127.0.0.1:1/0")
    assert "pw-in-bad-url-77" not in str(bad.value)


@pytest.mark.parametrize(
    "url", ["redis://:in-url@127.0.0.1:1/0", "unix:///tmp/redis.sock?password=in-url"]
)
def test_a_password_in_the_url_and_as_a_secret_is_refused(url):
    with pytest.raises(ConfigurationError, match="not both") as both:
        RedisStateStore.from_url(url, password=Secret("redis-password", "as-secret"))
    assert "in-url" not in str(both.value)
    assert "as-secret" not in str(both.value)
