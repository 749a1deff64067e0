"""An upstream that echoes the API key never gets it to a client or a log line.

The service is composed from settings on the Responses backend against the
loopback fake OpenAI, which echoes the key (whole, URL-encoded, partly) in its
error bodies and stream events; keys of three shapes, read through three transports.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import quote

import anyio
import pytest
from http_support import sse_events, start

from assistant_service.entrypoints.composition import services_from_settings
from assistant_service.entrypoints.http.services import Services
from assistant_service.entrypoints.settings import Settings, load_settings
from fakeopenai import FakeOpenAI, error_reply
from fakeopenai import turns as t

pytestmark = pytest.mark.anyio

KEYS = {
    "openai-shaped": "sk-proj-Qm7tL0aZ3xYc9VbN2kPd5RsE8wHf1JgU",
    "odd-shaped": "AKx9.q7/Lm+Zt=p2~w:Rv#8s&Yd!4Hc",
    "hex": "7f3a9c0e1b2d4f6a8c9e0b1d3f5a7c9e",
}


def partial(key: str) -> str:
    # OpenAI's 401 shows the first and last characters around a mask.
    return f"{key[:5]}***...{key[-3:]}"


ECHOES: dict[str, Callable[[FakeOpenAI, str], None]] = {
    "401 whole": lambda fake, key: fake.script(
        "responses.create", error_reply(401, f"Incorrect API key provided: {key}.")
    ),
    "401 partial": lambda fake, key: fake.script(
        "responses.create", error_reply(401, f"Incorrect API key provided: {partial(key)}.")
    ),
    "404 url-encoded": lambda fake, key: fake.script(
        "responses.create", error_reply(404, f"no model at /v1/models?key={quote(key, safe='')}")
    ),
    "429 whole": lambda fake, key: fake.script(
        "responses.create",
        error_reply(429, f"rate limit for key {key}", headers={"retry-after": "1"}),
    ),
    "500 whole": lambda fake, key: fake.script(
        "responses.create", error_reply(500, f"internal error (key={key})")
    ),
    "error event": lambda fake, key: fake.responses.turn(t.text("x", error=f"bad key {key}")),
    "response.failed": lambda fake, key: fake.responses.turn(
        t.text("x", fail=f"refused {partial(key)} and {key[3:20]}")
    ),
}


def leaks(key: str, text: str) -> list[str]:
    """The pieces of ``key`` that show in ``text``: itself, encoded, 12 characters of it, echoes."""
    pieces = {key, quote(key, safe=""), partial(key), json.dumps(key)[1:-1]}
    pieces |= {key[i : i + 12] for i in range(len(key) - 11)}
    return sorted(p for p in pieces if p in text)


@pytest.fixture(params=sorted(KEYS))
def key(request: pytest.FixtureRequest) -> str:
    return KEYS[request.param]


@pytest.fixture
def settings(fake_openai: FakeOpenAI, key: str) -> Settings:
    return load_settings(
        {
            "OPENAI_API_KEY": key,
            "OPENAI_BASE_URL": fake_openai.base_url,
            "LLM_BACKEND": "responses",
            "RESPONSES_STATE": "local",
            "OPENAI_MAX_RETRIES": "0",
        }
    )


@pytest.fixture
async def services(settings: Settings) -> AsyncIterator[Services]:
    services = await services_from_settings(settings)
    try:
        yield services
    finally:
        for close in reversed(services.closers):
            await close()


async def over_json(client: Any, thread_id: str) -> str:
    response = await client.post("/chat", json={"thread_id": thread_id, "message": "hi"})
    assert response.status_code in {502, 503}, await response.get_data()
    return (await response.get_data()).decode()


async def over_sse(client: Any, thread_id: str) -> str:
    response = await client.post(
        "/chat",
        json={"thread_id": thread_id, "message": "hi"},
        headers={"Accept": "text/event-stream"},
    )
    raw = await response.get_data()
    assert sse_events(raw)[-1]["type"] == "error"
    return raw.decode()


async def over_websocket(client: Any, thread_id: str) -> str:
    frames = []
    with anyio.fail_after(10):
        async with client.websocket("/stream") as socket:
            await socket.send(json.dumps({"thread_id": thread_id, "message": "hi"}))
            while not frames or json.loads(frames[-1])["type"] != "error":
                frames.append(await socket.receive())
    return "\n".join(frames)


TRANSPORTS = {"json": over_json, "sse": over_sse, "websocket": over_websocket}


@pytest.mark.parametrize("echo", sorted(ECHOES))
@pytest.mark.parametrize("transport", sorted(TRANSPORTS))
async def test_an_echoed_key_reaches_no_body_event_or_log_line(
    client, fake_openai, read_logs, key, echo, transport
):
    thread_id = await start(client)
    ECHOES[echo](fake_openai, key)
    seen = await TRANSPORTS[transport](client, thread_id)
    assert "[REDACTED]" in seen  # the upstream's message is kept, the key masked out of it
    assert leaks(key, seen) == []
    log_text = "\n".join(json.dumps(line) for line in read_logs())
    assert leaks(key, log_text) == []
    assert fake_openai.requests_to("responses.create")  # the upstream was asked
