"""The service as a process on ``LLM_BACKEND=chat`` against the fake OpenAI, and raw clients.

The process logs JSON lines to a file (a pipe nobody reads would block it);
:meth:`ChatService.log_lines` parses them. The raw clients open a stream and
never read it, with a receive buffer as small as the kernel allows, so the
server's sends block as soon as its own buffers are full.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import attrs
import httpx2

import assistant_service
from fakeopenai import API_KEY
from support.servers import free_port

SOURCE = str(Path(assistant_service.__file__).parent.parent)
SERVE = (sys.executable, "-m", "assistant_service.entrypoints.cli", "serve", "--host", "127.0.0.1")
WAIT = 20.0  # the longest any single wait of these tests may take
TINY_BUFFER = 4_096


@attrs.define
class ChatService:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def ws_url(self) -> str:
        return "ws" + self.url.removeprefix("http") + "/stream"

    def client(self) -> httpx2.Client:
        return httpx2.Client(base_url=self.url, timeout=WAIT)

    def start_thread(self) -> str:
        with self.client() as client:
            return str(client.get("/start").json()["thread_id"])

    def terminate(self) -> None:
        self.process.send_signal(signal.SIGTERM)

    def wait(self, timeout: float = WAIT) -> int:
        return self.process.wait(timeout=timeout)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def log_lines(self) -> list[dict[str, Any]]:
        lines = []
        for line in self.log_text().splitlines():
            with contextlib.suppress(ValueError):
                lines.append(json.loads(line))
        return lines

    def events(self, name: str) -> list[dict[str, Any]]:
        # JSON lines carry the event's name as ``message`` (Cloud Logging's field).
        return [line for line in self.log_lines() if line.get("message") == name]


@contextlib.contextmanager
def chat_service(openai_url: str, log: Path, **env: str) -> Iterator[ChatService]:
    """The service on the chat backend until the block ends (SIGKILL if it outlives it)."""
    port = free_port()
    environment = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": SOURCE,
        "LLM_BACKEND": "chat",
        "OPENAI_API_KEY": API_KEY,
        "OPENAI_BASE_URL": openai_url,
        "OPENAI_MAX_RETRIES": "0",
        "OPENAI_TIMEOUT": "60",
        "LOG_FORMAT": "json",
        "LOGGING_LEVEL": "INFO",
        "PORT": str(port),
        **env,
    }
    with log.open("wb") as output:
        process = subprocess.Popen(
            SERVE,
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    service = ChatService(f"http://127.0.0.1:{port}", process, log)
    try:
        _wait_healthy(service)
        yield service
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=WAIT)


def _wait_healthy(service: ChatService) -> None:
    deadline = time.monotonic() + WAIT
    with httpx2.Client(base_url=service.url, timeout=2) as client:
        while True:
            try:
                if client.get("/healthz").status_code == 200:
                    return
            except httpx2.TransportError:  # noqa: PERF203 -- not up yet
                if service.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the server did not start: {service.log_text()}") from None
                time.sleep(0.05)


def _tiny_socket(url: str) -> socket.socket:
    parts = urlsplit(url)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # Before connect: the window the client advertises stays this small.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, TINY_BUFFER)
    sock.settimeout(WAIT)
    sock.connect((parts.hostname, parts.port))
    return sock


def sse_non_reader(url: str, thread_id: str, message: str) -> socket.socket:
    """``POST /chat`` asking for an event stream, then nothing read."""
    body = json.dumps({"thread_id": thread_id, "message": message}).encode()
    sock = _tiny_socket(url)
    host = urlsplit(url).netloc
    sock.sendall(
        f"POST /chat HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    return sock


def ws_non_reader(ws_url: str, thread_id: str, message: str) -> socket.socket:
    """A WebSocket that sends one message frame, then reads nothing after the handshake."""
    sock = _tiny_socket(ws_url)
    parts = urlsplit(ws_url)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        f"GET {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        data = sock.recv(1)  # byte by byte: nothing of what follows the handshake is read
        if not data:
            raise ConnectionError("the server closed the handshake")
        head += data
    assert b" 101 " in head.split(b"\r\n")[0], head
    sock.sendall(text_frame(json.dumps({"thread_id": thread_id, "message": message})))
    return sock


def text_frame(text: str) -> bytes:
    """A masked client text frame (a zero mask leaves the payload as it is)."""
    payload = text.encode()
    if len(payload) < 126:
        head = struct.pack("!BB", 0x81, 0x80 | len(payload))
    else:
        head = struct.pack("!BBH", 0x81, 0x80 | 126, len(payload))
    return head + b"\0\0\0\0" + payload


def closed_by_server(sock: socket.socket, timeout: float = WAIT) -> bool:
    """Read until the server closes (EOF or reset); False if it is still open after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            if not sock.recv(65_536):
                return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except TimeoutError:
            return False
    return False
