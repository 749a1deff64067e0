"""Hostile clients over real sockets: floods, clients that never read."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import struct
from urllib.parse import urlsplit

import anyio
import pytest

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
