"""Clients that open a long stream and never read it are dropped after SEND_TIMEOUT.

Real sockets against the service as a process on the chat backend; the fake
OpenAI answers every run with a long message. 64 clients (SSE and WebSocket)
read nothing, with receive buffers as small as the kernel allows; the server
has exactly 64 run slots, so the others' chats can only succeed once the
non-readers' slots are freed.
"""

from __future__ import annotations

import concurrent.futures
import socket
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import httpx2
import pytest
from chat_service import (
    ChatService,
    chat_service,
    closed_by_server,
    sse_non_reader,
    ws_non_reader,
)

from fakeopenai import FakeOpenAI, start_fake_openai
from fakeopenai.chat import ChatScript, chat_reply

NON_READERS = 64
READERS = 8
# About 3 MiB of events per run (deltas, then the whole message twice): far more
# than the kernel's and the server's buffers hold for a client that reads nothing.
PIECE = "x" * 4_096
PIECES = 256
ROUTE = "chat.completions.create"
# 64 runs of a long answer on a loaded 2-core machine take a while; still bounded.
LONG_WAIT = 90.0


@pytest.fixture(scope="module")
def fake_openai() -> Iterator[FakeOpenAI]:
    fake = start_fake_openai()
    script: ChatScript = fake.extensions["chat"]
    script.default = chat_reply("", deltas=(PIECE,) * PIECES)
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def service(fake_openai: FakeOpenAI, tmp_path: Path) -> Iterator[ChatService]:
    with chat_service(
        fake_openai.base_url,
        tmp_path / "service.log",
        SEND_TIMEOUT="1",
        MAX_CONCURRENT_RUNS=str(NON_READERS),
        GRACEFUL_TIMEOUT="1",
        # 64 connections at once overflow the fake's listen backlog now and then.
        OPENAI_MAX_RETRIES="3",
    ) as running:
        yield running


def _chat_until_served(service: ChatService, thread_id: str) -> httpx2.Response:
    """``POST /chat`` until it is not refused for want of a run slot (bounded)."""
    deadline = time.monotonic() + LONG_WAIT
    with service.client() as client:
        while True:
            response = client.post("/chat", json={"thread_id": thread_id, "message": "hi"})
            overloaded = response.status_code == 503 and (
                response.json()["error"]["code"] == "overloaded"
            )
            if not overloaded or time.monotonic() > deadline:
                return response
            time.sleep(0.1)


def _wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + LONG_WAIT
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def _non_reader(service: ChatService, index: int, thread_id: str) -> socket.socket:
    if index % 2:
        return ws_non_reader(service.ws_url, thread_id, "tell me everything")
    return sse_non_reader(service.url, thread_id, "tell me everything")


def test_non_readers_are_dropped_and_their_slots_freed_while_others_chat(service, fake_openai):
    threads = [service.start_thread() for _ in range(NON_READERS + READERS)]
    asked = len(fake_openai.requests_to(ROUTE))
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        sockets = list(pool.map(partial(_non_reader, service), range(NON_READERS), threads))
    try:
        # Every run slot is held by a non-reader, whose run cannot end by itself
        # (its answer is far larger than every buffer on the way), before the
        # others ask: they can only be served once non-readers' slots are freed.
        _wait_until(
            lambda: len(fake_openai.requests_to(ROUTE)) >= asked + NON_READERS,
            "the non-readers' runs did not all start",
        )
        with concurrent.futures.ThreadPoolExecutor(READERS) as pool:
            answers = list(pool.map(partial(_chat_until_served, service), threads[NON_READERS:]))
        for response in answers:
            assert response.status_code == 200, response.text
            assert response.json()["responses"] == [PIECE * PIECES]
        _wait_until(
            lambda: len(service.events("client.not_reading")) >= NON_READERS,
            "not every non-reader was dropped",
        )
        # Dropped means reset: nothing more is sent, nothing is left open.
        assert all(closed_by_server(sock, timeout=5) for sock in sockets)
    finally:
        for sock in sockets:
            sock.close()
    dropped = service.events("client.not_reading")
    assert len(dropped) == NON_READERS
    assert {line["protocol"] for line in dropped} == {"http", "websocket"}
    assert all(line["aborted"] for line in dropped)
    # The server still serves: a new chat is answered in full.
    with service.client() as client:
        response = client.post("/chat", json={"thread_id": service.start_thread(), "message": "x"})
        assert response.json()["responses"] == [PIECE * PIECES]
