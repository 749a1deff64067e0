"""SIGTERM, as a container host sends it: drain, finish the run in flight, stop."""

from __future__ import annotations

import json
import os
import signal

import anyio
import httpx2
import pytest
import websockets
from websockets.asyncio.client import connect

from assistant_service.adapters.llm.scripted import call_tool, call_tools, reply

pytestmark = pytest.mark.anyio


async def test_sigterm_finishes_the_run_in_flight_then_stops(signalled_server, model, slow_tool):
    server = signalled_server
    async with connect(server.ws_url) as socket:
        await socket.send(json.dumps({"thread_id": "conv_missing", "message": "hi"}))
        assert json.loads(await socket.recv())["code"] == "not_found"
    async with httpx2.AsyncClient(base_url=server.url) as http:
        thread_id = (await http.get("/start")).json()["thread_id"]
    model.script(call_tools(call_tool("t.wait", {"seconds": 10})), reply("made it"))
    async with connect(server.ws_url) as socket:
        await socket.send(json.dumps({"thread_id": thread_id, "message": "slow"}))
        with anyio.fail_after(5):
            await slow_tool.started.wait()
        os.kill(os.getpid(), signal.SIGTERM)
        await anyio.sleep(0.1)
        assert not server.stopped.is_set()  # it waits for the run
        slow_tool.release.set()
        events = []
        with anyio.fail_after(5):
            while not events or events[-1]["type"] != "run.completed":
                events.append(json.loads(await socket.recv()))
        assert events[-1]["responses"] == ["made it"]
        with anyio.fail_after(5), pytest.raises(websockets.ConnectionClosed) as closed:
            await socket.recv()
        assert closed.value.rcvd.code == 1001
    with anyio.fail_after(5):
        await server.stopped.wait()
