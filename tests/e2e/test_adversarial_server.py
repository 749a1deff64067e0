"""Hostile clients over real sockets: floods, clients that never read."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import socket
import struct
from urllib.parse import urlsplit

import anyio
import httpx2
import pytest
from websockets.asyncio.client import connect

from assistant_service.adapters.llm.scripted import call_tool, call_tools, reply

pytestmark = pytest.mark.anyio


def _text_frame(text: str) -> bytes:
    payload = text.encode()
    assert 125 < len(payload) < 65_536
    # A client frame must be masked; a zero mask leaves the payload as it is.
    return struct.pack("!BBH", 0x81, 0x80 | 126, len(payload)) + b"\0\0\0\0" + payload


def _flood_without_reading(url: str, frame: bytes, most: int, seconds: float) -> int:
    """Send ``frame`` until ``most`` bytes or a send blocks ``seconds``; then vanish."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=5) as sock:
        key = base64.b64encode(os.urandom(16)).decode()
        sock.sendall(
            f"GET {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        assert b" 101 " in sock.recv(4_096).split(b"\r\n")[0]
        sock.settimeout(seconds)
        sent = 0
        try:
            while sent < most:
                sock.sendall(frame)
                sent += len(frame)
        except TimeoutError:
            pass  # the server stopped reading: what a bounded server does
        # No close frame, unread answers: the kernel resets the connection.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        return sent


async def test_a_websocket_client_that_floods_and_never_reads_is_throttled(server, settings):
    # Each frame is refused with an error event about as large as the frame; once the
    # client stops reading, the server must stop reading too, not queue frames in memory.
    server.app.config["FULL_QUEUE_SECONDS"] = 2.0
    keys = {f"k{i:04}": 0 for i in range((settings.max_ws_message_bytes - 64) // 10)}
    frame = _text_frame(json.dumps(keys, separators=(",", ":")))
    most = 64 * 1024 * 1024
    tasks_before = len(asyncio.all_tasks())
    sent = await anyio.to_thread.run_sync(_flood_without_reading, server.ws_url, frame, most, 0.5)
    assert sent < most
    # The client vanished while every queue was full: the socket's tasks still end.
    with anyio.fail_after(5):
        while len(asyncio.all_tasks()) > tasks_before:  # noqa: ASYNC110
            await anyio.sleep(0.05)


def _chunks(size: int, sent: list[int] | None = None):
    async def chunks():
        # No Content-Length: the limit must hold while the body streams in.
        yield b'{"thread_id": "a", "message": "'
        for _ in range(size // 1_024):
            if sent is not None:
                sent[0] += 1_024
            yield b"x" * 1_024
        yield b'"}'

    return chunks()


async def test_a_chunked_body_over_the_limit_is_413(server, http, settings):
    body = _chunks(settings.max_body_bytes + 2_048)
    response = await http.post("/chat", content=body, headers={"X-Correlation-ID": "chunk-1"})
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert response.json()["error"]["correlation_id"] == "chunk-1"


async def test_a_huge_chunked_body_is_cut_off_not_read(server, http):
    # The server answers 413 and closes; a client still uploading may see the reset
    # before the answer (HTTP/1.1 has no better way). It must not read 64 MB.
    sent = [0]
    with contextlib.suppress(httpx2.TransportError):
        response = await http.post("/chat", content=_chunks(64 * 1024 * 1024, sent))
        assert response.status_code == 413
    # Cut off: the client never got to upload the whole body (TCP buffers hold a few MB).
    assert sent[0] < 32 * 1024 * 1024
    assert (await http.get("/healthz")).status_code == 200


async def test_a_burst_of_frames_during_a_run_is_refused_one_by_one(server, http, model, slow_tool):
    thread_id = (await http.get("/start")).json()["thread_id"]
    model.script(call_tools(call_tool("t.wait", {"seconds": 30})), reply("done"))
    frame = json.dumps({"thread_id": thread_id, "message": "go"})
    async with connect(server.ws_url) as socket:
        await socket.send(frame)
        with anyio.fail_after(5):
            await slow_tool.started.wait()
        for _ in range(50):
            await socket.send(frame)
        codes = []
        with anyio.fail_after(5):
            while len(codes) < 50:
                event = json.loads(await socket.recv())
                if event["type"] == "error":
                    codes.append(event["code"])
        assert set(codes) == {"conflict"}
        slow_tool.release.set()
        with anyio.fail_after(5):
            while (event := json.loads(await socket.recv()))["type"] != "run.completed":
                assert event["type"] != "error"
