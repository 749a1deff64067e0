"""Shutdown is bounded: a run still going after GRACEFUL_TIMEOUT is cancelled."""

from __future__ import annotations

import json

import anyio
import attrs
import pytest
from websockets.asyncio.client import connect

from assistant_service.adapters.llm.scripted import call_tool, call_tools, reply

pytestmark = pytest.mark.anyio


@pytest.fixture
def settings(settings):
    return attrs.evolve(settings, graceful_timeout=0.3)


async def test_a_run_longer_than_the_graceful_timeout_is_cancelled(server, http, model, slow_tool):
    thread_id = (await http.get("/start")).json()["thread_id"]
    model.script(call_tools(call_tool("t.wait", {"seconds": 60})), reply("never"))
    async with connect(server.ws_url) as socket:
        await socket.send(json.dumps({"thread_id": thread_id, "message": "slow"}))
        with anyio.fail_after(5):
            await slow_tool.started.wait()
        started = anyio.current_time()
        server.stop.set()
        with anyio.fail_after(5):
            await server.stopped.wait()
            await slow_tool.cancelled.wait()
    assert anyio.current_time() - started < 3
    assert not slow_tool.finished
