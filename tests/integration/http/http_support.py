"""Helpers for the in-process HTTP tests."""

from __future__ import annotations

import json
from typing import Any


async def start(client: Any, headers: dict[str, str] | None = None, **query: str) -> str:
    response = await client.get("/start", query_string=query, headers=headers or {})
    assert response.status_code == 200, await response.get_data()
    body = await response.get_json()
    return str(body["thread_id"])


def sse_events(raw: bytes) -> list[dict[str, Any]]:
    events = []
    for block in raw.decode().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "data" in lines:
            payload = json.loads(lines["data"])
            assert payload["type"] == lines["event"]
            events.append(payload)
    return events


async def open_socket(client: Any, path: str, **kwargs: Any) -> None:
    """Open a WebSocket, send a frame and read the answer.

    A refused handshake raises Quart's ``WebsocketResponseError`` here, once its
    refusal arrives (a check that awaits a store takes a moment): sending a frame
    and leaving at once could cancel the check before it answers.
    """
    async with client.websocket(path, **kwargs) as socket:
        await socket.send("{}")
        await socket.receive()
