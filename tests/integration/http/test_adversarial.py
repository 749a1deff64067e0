"""An adversarial pass over the edge: each test once broke it, or pins a limit it keeps."""

from __future__ import annotations

import json

import anyio
import pytest
from http_support import start

from assistant_service.entrypoints.http.app import edge_state

pytestmark = pytest.mark.anyio


async def test_a_client_leaving_right_after_its_frame_never_leaks_a_run_slot(app, client, probe):
    # The run task may be cancelled before its first step; its slot must still come back.
    thread_id = await start(client)
    frame = json.dumps({"thread_id": thread_id, "message": "hi"})
    for _ in range(30):
        async with client.websocket("/stream") as socket:
            await socket.send(frame)
    with anyio.fail_after(5):
        while edge_state(app).slots.active:  # noqa: ASYNC110
            await anyio.sleep(0.01)
