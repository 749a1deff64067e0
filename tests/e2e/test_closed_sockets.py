"""A WebSocket that closes is let go at once, not at its next ping."""

from __future__ import annotations

import asyncio
import json

import anyio
import attrs
import pytest
from websockets.asyncio.client import connect

pytestmark = pytest.mark.anyio


@pytest.fixture
def settings(settings):
    # Far longer than any wait below: a socket held until its next ping shows.
    return attrs.evolve(settings, ws_ping_interval=600.0)


async def test_closed_websockets_leave_no_task_behind(server):
    await anyio.sleep(0.2)  # the health checks' connections end
    tasks_before = len(asyncio.all_tasks())
    for _ in range(20):
        async with connect(server.ws_url) as socket:
            await socket.send(json.dumps({"thread_id": "conv_missing", "message": "hi"}))
            assert json.loads(await socket.recv())["code"] == "not_found"
    with anyio.fail_after(5):
        while len(asyncio.all_tasks()) > tasks_before:  # noqa: ASYNC110
            await anyio.sleep(0.05)
    # Nothing is left for the shutdown to wait for either.
    server.stop.set()
    with anyio.fail_after(5):
        await server.stopped.wait()
