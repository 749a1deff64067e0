"""SIGTERM with runs of every transport in flight: each client is told, the process exits 0.

The service runs as a process on the chat backend; the fake OpenAI takes a
minute to answer, so every run is still going when GRACEFUL_TIMEOUT runs out.
"""

from __future__ import annotations

import concurrent.futures
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
import websockets
from chat_service import WAIT, ChatService, chat_service
from websockets.sync.client import connect

from fakeopenai import FakeOpenAI, start_fake_openai
from fakeopenai.chat import ChatScript, ChatStep

ROUTE = "chat.completions.create"


@pytest.fixture(scope="module")
def fake_openai() -> Iterator[FakeOpenAI]:
    fake = start_fake_openai()
    script: ChatScript = fake.extensions["chat"]
    script.default = ChatStep(text="too late", delay=60)
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def service(fake_openai: FakeOpenAI, tmp_path: Path) -> Iterator[ChatService]:
    with chat_service(fake_openai.base_url, tmp_path / "service.log", GRACEFUL_TIMEOUT="2") as s:
        yield s


def _plain_chat(service: ChatService, thread_id: str) -> httpx2.Response:
    with service.client() as client:
        return client.post("/chat", json={"thread_id": thread_id, "message": "hi"})


def _sse_chat(service: ChatService, thread_id: str) -> list[dict[str, Any]]:
    """Every event of the stream; raises if the body is cut (httpx2 checks the chunking)."""
    events: list[dict[str, Any]] = []
    with (
        service.client() as client,
        client.stream(
            "POST",
            "/chat",
            json={"thread_id": thread_id, "message": "hi"},
            headers={"Accept": "text/event-stream"},
        ) as response,
    ):
        assert response.status_code == 200
        events.extend(
            json.loads(line.removeprefix("data: "))
            for line in response.iter_lines()
            if line.startswith("data: ")
        )
    return events


def _ws_chat(service: ChatService, thread_id: str) -> tuple[list[dict[str, Any]], int | None]:
    """Every event on the socket and the server's close code."""
    events = []
    with connect(service.ws_url, open_timeout=WAIT, close_timeout=WAIT) as socket:
        socket.send(json.dumps({"thread_id": thread_id, "message": "hi"}))
        try:
            while True:
                events.append(json.loads(socket.recv(timeout=WAIT)))
        except websockets.ConnectionClosed as closed:
            return events, closed.rcvd.code if closed.rcvd else None


def _idle_socket(service: ChatService) -> int | None:
    with connect(service.ws_url, open_timeout=WAIT, close_timeout=WAIT) as socket:
        try:
            socket.recv(timeout=WAIT)
        except websockets.ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd else None
    return None


def _wait_for_upstream_requests(fake: FakeOpenAI, count: int) -> None:
    deadline = time.monotonic() + WAIT
    while len(fake.requests_to(ROUTE)) < count:
        assert time.monotonic() < deadline, f"{count} runs did not reach the model"
        time.sleep(0.05)


def test_sigterm_ends_every_run_in_flight_with_shutting_down_and_exits_cleanly(
    service, fake_openai
):
    plain, sse, ws = (service.start_thread() for _ in range(3))
    # Sockets that closed before the signal must not trouble the shutdown.
    for _ in range(20):
        with connect(service.ws_url, open_timeout=WAIT):
            pass
    asked = len(fake_openai.requests_to(ROUTE))
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        plain_answer = pool.submit(_plain_chat, service, plain)
        sse_events = pool.submit(_sse_chat, service, sse)
        ws_events = pool.submit(_ws_chat, service, ws)
        idle = pool.submit(_idle_socket, service)
        _wait_for_upstream_requests(fake_openai, asked + 3)
        service.terminate()

        response = plain_answer.result(timeout=WAIT)
        assert response.status_code == 503
        error = response.json()["error"]
        assert error["code"] == "shutting_down"
        assert error["correlation_id"] == response.headers["X-Correlation-ID"]

        events = sse_events.result(timeout=WAIT)  # ended cleanly, not cut mid-chunk
        assert events[0]["type"] == "run.started"
        assert events[-1]["type"] == "error"
        assert events[-1]["code"] == "shutting_down"
        assert events[-1]["run_id"] == events[0]["run_id"]

        events, code = ws_events.result(timeout=WAIT)
        assert events[0]["type"] == "run.started"
        assert (events[-1]["type"], events[-1]["code"]) == ("error", "shutting_down")
        assert events[-1]["run_id"] == events[0]["run_id"]
        assert code == 1001

        assert idle.result(timeout=WAIT) == 1001

    assert service.wait() == 0
    log = service.log_text()
    assert "Traceback" not in log
    severities = {line.get("severity") for line in service.log_lines()}
    assert not severities & {"ERROR", "CRITICAL"}, log[-3000:]
