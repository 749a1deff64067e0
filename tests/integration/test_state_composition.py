"""STATE_STORE in the composition root: one shared store per process, checked by /readyz.

Two ``Services`` built from the same settings play two instances of the
service on one Redis; the server is stopped and started again under them.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from assistant_service.entrypoints.composition import services_from_settings
from assistant_service.entrypoints.http.app import create_app
from assistant_service.entrypoints.http.codec import STATE_STORE_UNAVAILABLE
from assistant_service.entrypoints.http.services import Services
from assistant_service.entrypoints.settings import load_settings
from support.servers import RedisServer, running_redis

pytestmark = [pytest.mark.anyio, pytest.mark.servers]


@pytest.fixture
def redis() -> Iterator[RedisServer]:
    # A server of this module's own: the tests stop it.
    with running_redis() as server:
        yield server


async def instance(redis: RedisServer, prefix: str) -> Services:
    settings = load_settings(
        {
            "STATE_STORE": "redis",
            "REDIS_URL": redis.url,
            "REDIS_KEY_PREFIX": prefix,
            "LLM_BACKEND": "offline",
            "LOG_FORMAT": "json",
        }
    )
    return await services_from_settings(settings)


@pytest.fixture
async def instances(redis: RedisServer) -> AsyncIterator[tuple[Services, Services]]:
    prefix = f"composition-{uuid.uuid4().hex[:8]}:"
    first, second = await instance(redis, prefix), await instance(redis, prefix)
    try:
        yield first, second
    finally:
        for services in (first, second):
            for close in services.closers:
                await close()


async def test_a_conversation_lives_in_the_shared_store_not_in_a_process(instances):
    first, second = instances
    assert first.state is not None
    assert first.state is not second.state
    conversation = await first.assistant.start_conversation()
    await first.assistant.chat(conversation, "use add a=1 b=2")
    result = await second.assistant.chat(conversation, "hello again")
    assert result.texts
    history = [message.text for message in await second.assistant.history(conversation)]
    assert history[0] == "use add a=1 b=2"
    assert history[2] == "hello again"


async def test_readiness_and_chat_report_a_store_that_went_away_and_recover(redis, instances):
    services, _ = instances
    app = create_app(services)
    async with app.test_app():
        client = app.test_client()
        thread_id = (await (await client.get("/start")).get_json())["thread_id"]
        response = await client.get("/readyz")
        assert (await response.get_json())["checks"]["state_store"] == "ok"

        redis.stop()
        response = await client.get("/readyz")
        assert response.status_code == 503
        assert (await response.get_json())["checks"]["state_store"] == "state_store_unavailable"
        response = await client.post("/chat", json={"thread_id": thread_id, "message": "hi"})
        assert response.status_code == 503
        body = await response.get_json()
        assert body["error"]["code"] == "state_store_unavailable"
        # Where the store lives is for the log, not for clients.
        assert body["error"]["message"] == STATE_STORE_UNAVAILABLE
        assert f":{redis.port}" not in str(body)

        redis.start()  # same port, empty: the process reconnects by itself
        assert (await client.get("/readyz")).status_code == 200
        thread_id = (await (await client.get("/start")).get_json())["thread_id"]
        response = await client.post("/chat", json={"thread_id": thread_id, "message": "hi"})
        assert response.status_code == 200
