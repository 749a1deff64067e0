"""WebSocket tickets across instances: issued by one app, redeemed once by another, on one Redis.

Two in-process apps stand for two instances of the service behind a load
balancer; each has its own Redis client on the same redis-server.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import attrs
import pytest
from http_support import open_socket, start
from quart import Quart
from quart.testing.connections import WebsocketResponseError

from assistant_service.adapters.state.redis import RedisStateStore
from assistant_service.entrypoints.http.app import create_app
from assistant_service.entrypoints.http.auth import ApiKeys
from assistant_service.entrypoints.http.services import Services
from support.servers import RedisServer, redis_server  # noqa: F401 -- the session fixture

pytestmark = pytest.mark.anyio

ALICE = "alice-key-0123456789abcdef"
BEARER = {"Authorization": f"Bearer {ALICE}"}


@pytest.fixture
async def instances(
    services: Services,
    redis_server: RedisServer,  # noqa: F811 -- the fixture
) -> AsyncIterator[tuple[Any, Any, RedisStateStore]]:
    """Two apps (one assistant between them, as a shared store would give) and a Redis peek."""
    prefix = f"test-{uuid.uuid4().hex[:12]}:"
    stores = [RedisStateStore.from_url(redis_server.url, prefix=prefix) for _ in range(3)]
    keys = ApiKeys.parse(json.dumps([{"id": "alice", "key": ALICE}]))
    apps: list[Quart] = [
        create_app(attrs.evolve(services, api_keys=keys, tokens=store)) for store in stores[:2]
    ]
    try:
        async with apps[0].test_app(), apps[1].test_app():
            yield apps[0].test_client(), apps[1].test_client(), stores[2]
    finally:
        for store in stores:
            await store.aclose()


async def test_a_ticket_from_one_instance_opens_a_socket_on_another_once(instances):
    first, second, _ = instances
    thread_id = await start(first, headers=BEARER)
    ticket = (await (await first.post("/ws-tickets", headers=BEARER)).get_json())["ticket"]
    async with second.websocket(f"/stream?ticket={ticket}") as socket:
        await socket.send(json.dumps({"thread_id": thread_id, "message": "hi"}))
        assert json.loads(await socket.receive())["type"] == "run.started"
    for client in (first, second):
        with pytest.raises(WebsocketResponseError) as used:
            await open_socket(client, f"/stream?ticket={ticket}")
        assert used.value.response.status_code == 401


async def test_the_store_holds_a_digest_of_the_ticket_never_the_ticket(instances):
    first, _, peek = instances
    ticket = (await (await first.post("/ws-tickets", headers=BEARER)).get_json())["ticket"]
    client = peek._client  # the test reads what Redis holds
    dump = [
        (key, await client.get(key), await client.pttl(key))
        async for key in client.scan_iter(match=f"{peek.prefix}*")
    ]
    assert len(dump) == 1
    key, value, ttl_ms = dump[0]
    assert ticket.encode() not in key
    assert hashlib.sha256(ticket.encode()).hexdigest().encode() in key
    assert value == b"alice"
    assert 0 < ttl_ms <= 30_000
