"""At the HTTP edge: the circuit breaker (503 ``upstream_circuit_open``, ``/readyz``) and
malformed upstream replies (502 on every route, ``/start`` included).

The service is composed from settings against the loopback fake OpenAI, on each
backend; the breaker's clock is swapped for a fake one after composition, so
cooling down takes no waiting.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import anyio
import attrs
import jsonschema
import pytest
from http_support import sse_events, start

from assistant_service.entrypoints.composition import services_from_settings
from assistant_service.entrypoints.http.app import create_app
from assistant_service.entrypoints.http.openapi import openapi_document
from assistant_service.entrypoints.http.services import Services
from assistant_service.entrypoints.settings import Settings, load_settings
from fakeopenai import FakeOpenAI, JSONReply, RawReply, SSEEvent, SSEReply, error_reply, event
from fakeopenai import turns as t
from fakeopenai.assistants import reply as assistants_reply
from fakeopenai.assistants_state import run_object
from fakeopenai.chat import chat_reply, delta

pytestmark = pytest.mark.anyio

COOLDOWN = 30


@attrs.define
class FakeClock:
    now: float = 0.0

    def __call__(self) -> float:
        return self.now


BACKENDS = {
    "responses": {"LLM_BACKEND": "responses", "RESPONSES_STATE": "conversations"},
    "responses-local": {"LLM_BACKEND": "responses", "RESPONSES_STATE": "local"},
    "chat": {"LLM_BACKEND": "chat"},
    "assistants": {"LLM_BACKEND": "assistants", "ASSISTANT_ID": "demo"},
}
# The route each backend's model steps go to, and where it opens conversations (if upstream).
STEP_ROUTE = {
    "responses": "responses.create",
    "responses-local": "responses.create",
    "chat": "chat.completions.create",
    "assistants": "runs.create",
}
OPEN_ROUTE = {"responses": "conversations.create", "assistants": "threads.create"}


@pytest.fixture(params=sorted(BACKENDS))
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def settings(fake_openai: FakeOpenAI, backend: str) -> Settings:
    return load_settings(
        {
            "OPENAI_API_KEY": "sk-test-guards-0123456789",
            "OPENAI_BASE_URL": fake_openai.base_url,
            "OPENAI_MAX_RETRIES": "0",
            "BREAKER_FAILURES": "2",
            "BREAKER_COOLDOWN": str(COOLDOWN),
            **BACKENDS[backend],
        }
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def services(settings: Settings, clock: FakeClock) -> AsyncIterator[Services]:
    services = await services_from_settings(settings)
    assert services.breaker is not None
    services.breaker.clock = clock
    try:
        yield services
    finally:
        for close in reversed(services.closers):
            await close()


def answers(fake: FakeOpenAI, backend: str, text: str) -> None:
    """The next model step answers ``text``."""
    if backend.startswith("responses"):
        fake.responses.turn(t.text(text))
    elif backend == "chat":
        fake.extensions["chat"].play(chat_reply(text))
    else:
        fake.extensions["assistants"].play(assistants_reply(text))


def malformed_step(backend: str, thread_id: str) -> SSEReply:
    """A 200 stream of the wrong shape for ``backend``'s step."""
    if backend.startswith("responses"):
        return SSEReply((event("response.completed"),))  # without its response
    if backend == "chat":
        return SSEReply((SSEEvent(delta({"content": 42}, "stop")),), done=True)
    run = {k: v for k, v in run_object(thread_id, "asst").items() if k != "id"}
    return SSEReply((SSEEvent(run, event="thread.run.created"),))


async def chat_json(client: Any, thread_id: str) -> Any:
    return await client.post("/chat", json={"thread_id": thread_id, "message": "hi"})


async def chat_sse(client: Any, thread_id: str) -> list[dict[str, Any]]:
    response = await client.post(
        "/chat",
        json={"thread_id": thread_id, "message": "hi"},
        headers={"Accept": "text/event-stream"},
    )
    return sse_events(await response.get_data())


async def sse_error(client: Any, thread_id: str) -> dict[str, Any]:
    """The error of an SSE chat: its ``error`` event, or the 503 refusing it before it began.

    Backends whose conversations live upstream look the thread up before the
    stream starts: an open breaker refuses that, as a plain JSON 503.
    """
    response = await client.post(
        "/chat",
        json={"thread_id": thread_id, "message": "hi"},
        headers={"Accept": "text/event-stream"},
    )
    if response.status_code == 503:
        assert response.headers["Retry-After"]
        return dict((await response.get_json())["error"])
    assert response.status_code == 200
    (failed,) = [e for e in sse_events(await response.get_data()) if e["type"] == "error"]
    return failed


async def chat_ws(client: Any, thread_id: str) -> list[dict[str, Any]]:
    frames: list[dict[str, Any]] = []
    with anyio.fail_after(10):
        async with client.websocket("/stream") as socket:
            await socket.send(json.dumps({"thread_id": thread_id, "message": "hi"}))
            while not frames or frames[-1]["type"] not in {"error", "run.completed"}:
                frames.append(json.loads(await socket.receive()))
    return frames


def conforms(body: Any, schema: str) -> None:
    """``body`` fits ``components.schemas[schema]`` of the OpenAPI document."""
    document = openapi_document()
    root = {"$ref": f"#/components/schemas/{schema}", "components": document["components"]}
    jsonschema.Draft202012Validator(root).validate(body)


async def readyz(client: Any) -> tuple[int, dict[str, Any]]:
    response = await client.get("/readyz")
    return response.status_code, await response.get_json()


# --- the circuit breaker --------------------------------------------------------------------


async def test_an_open_breaker_is_a_503_with_retry_after_on_every_transport_and_no_upstream_call(
    client, fake_openai, backend, clock
):
    thread_id = await start(client)
    status, body = await readyz(client)
    assert (status, body["breakers"]) == (
        200,
        {"llm": {"state": "closed", "consecutive_failures": 0, "retry_after": 0.0}},
    )
    route = STEP_ROUTE[backend]
    fake_openai.script(route, error_reply(500, "down"), error_reply(500, "down"))
    for _ in range(2):
        assert (await chat_json(client, thread_id)).status_code == 502
    sent = len(fake_openai.requests)

    clock.now += 10.4
    response = await chat_json(client, thread_id)
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "20"
    error = (await response.get_json())["error"]
    assert (error["code"], error["retry_after"]) == ("upstream_circuit_open", 20.0)
    assert error["correlation_id"] == response.headers["X-Correlation-ID"]

    failed = await sse_error(client, thread_id)
    assert (failed["code"], failed["retry_after"]) == ("upstream_circuit_open", 20.0)
    frames = await chat_ws(client, thread_id)
    assert (frames[-1]["code"], frames[-1]["retry_after"]) == ("upstream_circuit_open", 20.0)
    if backend in OPEN_ROUTE:
        opened = await client.get("/start")
        assert opened.status_code == 503
        assert (await opened.get_json())["error"]["code"] == "upstream_circuit_open"
    else:
        await start(client)  # conversations kept here need no upstream
    assert len(fake_openai.requests) == sent

    status, body = await readyz(client)
    assert status == 200  # reported, not a reason to take the instance out of rotation
    assert body["status"] == "ready"
    conforms(body, "Readiness")
    conforms(await response.get_json(), "Error")
    assert body["breakers"]["llm"] == {
        "state": "open",
        "consecutive_failures": 2,
        "retry_after": 20.0,
    }


async def test_after_the_cooldown_a_probe_closes_it_and_readyz_says_so(
    client, fake_openai, backend, clock
):
    thread_id = await start(client)
    fake_openai.script(STEP_ROUTE[backend], error_reply(503, "busy"), error_reply(500, "down"))
    for _ in range(2):
        await chat_json(client, thread_id)
    clock.now += COOLDOWN
    _, body = await readyz(client)
    assert body["breakers"]["llm"]["state"] == "half_open"
    assert body["breakers"]["llm"]["retry_after"] == 0.0

    answers(fake_openai, backend, "Back.")
    response = await chat_json(client, thread_id)
    assert response.status_code == 200, await response.get_data()
    assert (await response.get_json())["responses"] == ["Back."]
    _, body = await readyz(client)
    assert body["breakers"]["llm"]["state"] == "closed"


async def test_4xx_answers_never_open_it(client, fake_openai, backend):
    thread_id = await start(client)
    fake_openai.script(
        STEP_ROUTE[backend],
        error_reply(400, "bad"),
        error_reply(404, "no model"),
        error_reply(429, "slow", headers={"retry-after": "1"}),
        error_reply(401, "key"),
    )
    statuses = [(await chat_json(client, thread_id)).status_code for _ in range(4)]
    assert statuses == [502, 502, 503, 502]
    _, body = await readyz(client)
    assert body["breakers"]["llm"]["state"] == "closed"


async def test_the_offline_backend_has_no_breaker_and_readyz_shows_none():
    services = await services_from_settings(load_settings({"LLM_BACKEND": "offline"}))
    app = create_app(services)
    async with app.test_app():
        status, body = await readyz(app.test_client())
    assert services.breaker is None
    assert status == 200
    assert "breakers" not in body


# --- malformed upstream replies -------------------------------------------------------------


MALFORMED_CONVERSATIONS = {
    "no id": JSONReply({"object": "conversation", "created_at": 1}),
    "a numeric id": JSONReply({"id": 5, "created_at": 1}),
    "an id the service refuses": JSONReply({"id": "conv 1/../x", "created_at": 1}),
    "a list": JSONReply([]),
    "not JSON": RawReply(b"<html>oops</html>", content_type="application/json"),
}


@pytest.mark.parametrize("backend", sorted(OPEN_ROUTE))  # those that open conversations upstream
@pytest.mark.parametrize("body", MALFORMED_CONVERSATIONS.values(), ids=MALFORMED_CONVERSATIONS)
async def test_start_answers_502_for_a_malformed_conversation_and_works_again(
    client, fake_openai, backend, body
):
    fake_openai.script(OPEN_ROUTE[backend], body)
    response = await client.get("/start")
    assert response.status_code == 502, await response.get_data()
    error = (await response.get_json())["error"]
    assert error["code"] == "upstream_error"
    assert error["correlation_id"] == response.headers["X-Correlation-ID"]
    thread_id = await start(client)
    answers(fake_openai, backend, "Fine.")
    assert (await (await chat_json(client, thread_id)).get_json())["responses"] == ["Fine."]


async def test_a_malformed_step_is_a_502_an_error_event_on_sse_and_ws_and_the_thread_goes_on(
    client, fake_openai, backend
):
    thread_id = await start(client)
    route = STEP_ROUTE[backend]
    fake_openai.script(route, malformed_step(backend, thread_id))
    response = await chat_json(client, thread_id)
    assert response.status_code == 502, await response.get_data()
    assert (await response.get_json())["error"]["code"] == "upstream_error"
    # The breaker counted it: one more would open it (BREAKER_FAILURES=2); an answer resets it.
    answers(fake_openai, backend, "One.")
    assert (await (await chat_json(client, thread_id)).get_json())["responses"] == ["One."]

    fake_openai.script(route, malformed_step(backend, thread_id))
    events = await chat_sse(client, thread_id)
    assert events[-1]["type"] == "error"
    assert events[-1]["code"] == "upstream_error"
    fake_openai.script(route, malformed_step(backend, thread_id))
    frames = await chat_ws(client, thread_id)
    assert (frames[-1]["type"], frames[-1]["code"]) == ("error", "upstream_error")

    _, body = await readyz(client)
    assert body["breakers"]["llm"]["state"] == "open"  # two faults in a row


HISTORY_ROUTE = {"responses": "conversations.items.list", "assistants": "messages.list"}


@pytest.mark.parametrize("backend", sorted(HISTORY_ROUTE))  # those that keep history upstream
async def test_a_malformed_history_page_is_a_502(client, fake_openai, backend):
    thread_id = await start(client)
    fake_openai.script(HISTORY_ROUTE[backend], JSONReply({"object": "list", "data": "x"}))
    response = await client.get(f"/threads/{thread_id}/messages")
    assert response.status_code == 502, await response.get_data()
    assert (await response.get_json())["error"]["code"] == "upstream_error"
    response = await client.get(f"/threads/{thread_id}/messages")
    assert response.status_code == 200
