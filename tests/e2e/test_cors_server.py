"""CORS and the WebSocket's Origin over real sockets: Hypercorn answers as the in-process app does."""

from __future__ import annotations

import json

import anyio
import attrs
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from assistant_service.entrypoints.settings import Settings

pytestmark = pytest.mark.anyio

ALLOWED = "https://app.example.com"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return attrs.evolve(settings, cors_origins=(ALLOWED,))


async def test_preflight_and_answers_over_hypercorn(http):
    headers = {"Origin": ALLOWED, "Access-Control-Request-Method": "POST"}
    preflight = await http.options("/chat", headers=headers)
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == ALLOWED
    refused = await http.options("/chat", headers={**headers, "Origin": "https://other.example"})
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "origin_refused"
    answer = await http.get("/start", headers={"Origin": ALLOWED})
    assert answer.headers["access-control-allow-origin"] == ALLOWED


async def test_a_socket_from_another_origin_is_refused_403_and_the_own_origin_chats(server, http):
    with pytest.raises(InvalidStatus) as refused:
        async with connect(server.ws_url, origin="https://other.example"):
            pass
    assert refused.value.response.status_code == 403
    assert json.loads(refused.value.response.body)["error"]["code"] == "origin_refused"

    thread_id = (await http.get("/start")).json()["thread_id"]
    own = server.url  # the playground's page: http://127.0.0.1:<port>
    for origin in (own, ALLOWED, None):
        async with connect(server.ws_url, origin=origin) as socket:
            await socket.send(json.dumps({"thread_id": thread_id, "message": "hi"}))
            with anyio.fail_after(5):
                assert json.loads(await socket.recv())["type"] == "run.started"
                while json.loads(await socket.recv())["type"] != "run.completed":
                    pass
