"""Rate limits and token budgets across two instances sharing one real ``redis-server``.

Two apps built by the composition root from the same settings play two
instances of the service: what one counts, the other sees.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio

from assistant_service.entrypoints.composition import services_from_settings
from assistant_service.entrypoints.http.app import create_app
from assistant_service.entrypoints.settings import load_settings
from support.servers import RedisServer, redis_server, running_redis  # noqa: F401 -- fixture

# The password test starts a server of its own: the mark is set here, not by the fixture.
pytestmark = [pytest.mark.anyio, pytest.mark.servers]

ALICE = "alice-key-0123456789abcdef"
CAROL = "carol-key-0123456789abcdef"
KEYS = [
    {"id": "alice", "key": ALICE},
    {"id": "carol", "key": CAROL, "rate_limit": "100/hour", "daily_tokens": 10},
]


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@contextlib.asynccontextmanager
async def instances(url: str, prefix: str, **env: str) -> AsyncIterator[list[Any]]:
    """Two instances (apps) on the Redis at ``url``; yields their test clients and services."""
    settings = load_settings(
        {
            "STATE_STORE": "redis",
            "REDIS_URL": url,
            "REDIS_KEY_PREFIX": prefix,
            "LLM_BACKEND": "offline",
            "METRICS": "off",
            **env,
        }
    )
    async with contextlib.AsyncExitStack() as stack:
        served = []
        for _ in range(2):
            services = await services_from_settings(settings)
            app = create_app(services)  # its shutdown closes the services' clients
            await stack.enter_async_context(app.test_app())
            served.append((app.test_client(), services))
        yield served


async def test_two_instances_on_redis_count_against_one_window_and_one_budget(
    redis_server: RedisServer,  # noqa: F811 -- the session fixture imported above
):
    prefix = f"limits-{uuid.uuid4().hex[:8]}:"
    env = {"RATE_LIMIT": "3/hour", "API_KEYS": json.dumps(KEYS)}
    async with instances(redis_server.url, prefix, **env) as ((first, one), (second, _)):
        answers = [
            await first.get("/assistants", headers=bearer(ALICE)),
            await first.get("/assistants", headers=bearer(ALICE)),
            await second.get("/assistants", headers=bearer(ALICE)),
        ]
        assert [r.status_code for r in answers] == [200, 200, 200]
        # The second instance saw the first one's two requests.
        assert [r.headers["RateLimit-Remaining"] for r in answers] == ["2", "1", "0"]
        for client in (first, second):
            refused = await client.get("/assistants", headers=bearer(ALICE))
            assert refused.status_code == 429
            assert (await refused.get_json())["error"]["code"] == "rate_limited"

        # Carol's budget: a run on the first instance uses more than 10 tokens.
        thread = await (await first.get("/start", headers=bearer(CAROL))).get_json()
        body = {"thread_id": thread["thread_id"], "message": "tell me about the weather"}
        assert (await first.post("/chat", json=body, headers=bearer(CAROL))).status_code == 200
        await one.limits.close()  # the first instance's usage is written (as at shutdown)
        refused = await second.post("/chat", json=body, headers=bearer(CAROL))
        assert refused.status_code == 429
        assert (await refused.get_json())["error"]["code"] == "budget_exhausted"

    # The counters are under the state store's prefix, and nowhere else.
    client = redis.asyncio.Redis.from_url(redis_server.url)
    try:
        keys = [key.decode() async for key in client.scan_iter(match="*LIMITER*")]
    finally:
        await client.aclose()
    ours = [key for key in keys if key.startswith(f"{prefix}limits:")]
    assert any("/tokens/carol/" in key for key in ours)
    assert any("/requests/key:alice/" in key for key in ours)
    assert not [key for key in keys if prefix in key and key not in ours]


async def test_a_password_protected_redis_counts_and_its_password_is_never_logged(read_logs):
    password = "limits-redis-password-" + uuid.uuid4().hex
    with running_redis(password=password) as server:
        url = f"redis://:{password}@127.0.0.1:{server.port}/0"
        async with instances(url, "pw:", RATE_LIMIT="1/hour") as ((first, _), (second, _)):
            assert (await first.get("/assistants")).status_code == 200
            assert (await second.get("/assistants")).status_code == 429
            # Redis gone: requests are let through (the limits guard spending, and a
            # run cannot start without the store anyway), and the log says so.
            server.stop()
            unlimited = await second.get("/assistants")
            assert unlimited.status_code == 200
            assert "RateLimit-Limit" not in unlimited.headers
    lines = read_logs()
    assert [line for line in lines if line["message"] == "limits.unavailable"]
    assert password not in json.dumps(lines)
    assert any(line["message"] == "limits.on" and line["shared"] for line in lines)
