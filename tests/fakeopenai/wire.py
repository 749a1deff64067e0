"""Write a reply on the wire: JSON bodies, and SSE streams as HTTP/1.1 chunks."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import uuid
from http.server import BaseHTTPRequestHandler
from typing import Any

from fakeopenai.server import Drop, JSONReply, Pause, Raw, RawReply, Reply, SSEEvent, SSEReply


def encode_event(event: SSEEvent) -> bytes:
    """One event in SSE framing, as OpenAI sends it (``event:`` line, then ``data:``)."""
    data = event.data if isinstance(event.data, str) else json.dumps(event.data)
    head = f"event: {event.event}\n" if event.event else ""
    return (head + f"data: {data}\n\n").encode()


def write_reply(handler: BaseHTTPRequestHandler, reply: Reply, stopping: threading.Event) -> None:
    if reply.delay and stopping.wait(reply.delay):
        handler.close_connection = True
        return
    if isinstance(reply, JSONReply):
        _write_json(handler, reply)
    elif isinstance(reply, RawReply):
        headers = {"content-type": reply.content_type, "content-length": str(len(reply.body))}
        _start(handler, reply.status, {**headers, **reply.headers})
        handler.wfile.write(reply.body)
        handler.wfile.flush()
    else:
        _write_stream(handler, reply, stopping)


def _start(handler: BaseHTTPRequestHandler, status: int, headers: dict[str, str]) -> None:
    handler.send_response(status)
    headers.setdefault("x-request-id", f"req_{uuid.uuid4().hex[:16]}")
    for name, value in headers.items():
        handler.send_header(name, value)
    handler.end_headers()


def _write_json(handler: BaseHTTPRequestHandler, reply: JSONReply) -> None:
    payload = json.dumps(reply.body).encode()
    headers = {"content-type": "application/json", "content-length": str(len(payload))}
    _start(handler, reply.status, {**headers, **reply.headers})
    handler.wfile.write(payload)
    handler.wfile.flush()


def _write_stream(
    handler: BaseHTTPRequestHandler, reply: SSEReply, stopping: threading.Event
) -> None:
    headers = {"content-type": "text/event-stream", "transfer-encoding": "chunked"}
    _start(handler, reply.status, {**headers, **reply.headers})
    for item in reply.items:
        if isinstance(item, Pause):
            if stopping.wait(item.seconds):
                return _drop(handler)
        elif isinstance(item, Drop):
            return _drop(handler)
        else:
            _chunk(handler, item.data if isinstance(item, Raw) else encode_event(item))
    if reply.done:
        _chunk(handler, b"data: [DONE]\n\n")
    handler.wfile.write(b"0\r\n\r\n")
    handler.wfile.flush()
    return None


def _chunk(handler: BaseHTTPRequestHandler, data: bytes) -> None:
    handler.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
    handler.wfile.flush()


def _drop(handler: BaseHTTPRequestHandler) -> None:
    handler.wfile.flush()
    handler.close_connection = True
    with contextlib.suppress(OSError):
        handler.connection.shutdown(socket.SHUT_RDWR)


def event(kind: str, **fields: Any) -> SSEEvent:
    """An event whose JSON ``type`` is also its SSE ``event:`` name, as the Responses API sends."""
    return SSEEvent({"type": kind, **fields}, event=kind)


__all__ = ["Drop", "Pause", "Raw", "SSEEvent", "SSEReply", "encode_event", "event", "write_reply"]
