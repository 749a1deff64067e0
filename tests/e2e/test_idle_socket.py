"""Idle WebSockets are reaped over a real socket (Quart's test client cannot see a close code)."""

from __future__ import annotations

import anyio
import attrs
import pytest
import websockets
from websockets.asyncio.client import connect

pytestmark = pytest.mark.anyio


@pytest.fixture
def settings(settings):
    return attrs.evolve(settings, ws_idle_timeout=0.2)


async def test_an_idle_socket_is_closed_with_going_away(server):
    async with connect(server.ws_url) as socket:
        with anyio.fail_after(5), pytest.raises(websockets.ConnectionClosed) as closed:
            await socket.recv()
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1001
