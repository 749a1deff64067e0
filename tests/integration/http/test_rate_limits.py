"""Rate limits and token budgets in-process: 429s with their headers, callers, frames, budgets.

Each test serves an app with the limits it needs, on the scripted model (which
reports the usage each step is scripted with) and the in-memory ``limits`` storage.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import attrs
import pytest
from http_support import open_socket
from openapi_spec_validator import validate
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from quart.testing.connections import WebsocketResponseError

from assistant_service.adapters.config.memory import InMemoryConfigRepository
from assistant_service.adapters.llm.scripted import (
    ScriptedModel,
    ScriptedStep,
    call_tool,
    call_tools,
)
from assistant_service.adapters.secrets.memory import InMemorySecretRepository
from assistant_service.adapters.tools import FunctionToolRegistry
from assistant_service.application.service import AssistantService
from assistant_service.domain.models import AssistantProfile, Usage
from assistant_service.entrypoints.composition import edge_limits
from assistant_service.entrypoints.http.app import create_app
from assistant_service.entrypoints.http.auth import ApiKeys
from assistant_service.entrypoints.http.openapi import openapi_document
from assistant_service.entrypoints.http.services import Services
from assistant_service.entrypoints.http.throttle import RUN_STARTING_ENDPOINTS
from assistant_service.entrypoints.observability import Observability, observability_from_settings
from assistant_service.entrypoints.settings import Settings

pytestmark = pytest.mark.anyio

ALICE = "alice-key-0123456789abcdef"
BOB = "bob-key-fedcba9876543210zz"
HOUR = 3600
DAY = 24 * HOUR

Serve = Callable[..., contextlib.AbstractAsyncContextManager[Any]]


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def peer(address: str) -> dict[str, Any]:
    """The ASGI scope's client: the address the server sees the request come from."""
    return {"client": (address, 40_000)}


@pytest.fixture
def serve(
    settings: Settings,
    model: ScriptedModel,
    registry: FunctionToolRegistry,
    profile: AssistantProfile,
) -> Serve:
    """Serve the app with ``keys`` (API_KEYS entries) and settings changed by ``changes``."""

    @contextlib.asynccontextmanager
    async def serve(
        keys: list[dict[str, Any]] | None = None,
        observability: Observability | None = None,
        **changes: Any,
    ) -> AsyncIterator[Any]:
        limited = attrs.evolve(settings, **changes)
        api_keys = ApiKeys.parse(json.dumps(keys)) if keys else None
        limits = edge_limits(limited, api_keys, model.store)
        observability = observability or Observability()
        observer = (
            observability.observer if limits is None else limits.observed_by(observability.observer)
        )
        configs = InMemoryConfigRepository.of(profile)
        assistant = AssistantService(
            model=model,
            state=model.store,
            configs=configs,
            tools=registry,
            default_assistant_id=profile.id,
            observer=observer,
        )
        services = Services(
            assistant=assistant,
            configs=configs,
            secrets=InMemorySecretRepository(values={}),
            settings=limited,
            observability=observability,
            api_keys=api_keys,
            limits=limits,
        )
        app = create_app(services)
        async with app.test_app():
            yield app.test_client()

    return serve


async def start(client: Any, **options: Any) -> str:
    response = await client.get("/start", **options)
    assert response.status_code == 200, await response.get_data()
    return str((await response.get_json())["thread_id"])


async def chat(client: Any, thread_id: str, **options: Any) -> Any:
    return await client.post("/chat", json={"thread_id": thread_id, "message": "hi"}, **options)


async def receive(socket: Any) -> dict[str, Any]:
    with anyio.fail_after(5):
        return dict(json.loads(await socket.receive()))


async def until_run_ends(socket: Any) -> dict[str, Any]:
    while True:
        event = await receive(socket)
        if event["type"] in {"run.completed", "run.failed", "error"}:
            return event


def window_seconds(value: str, period: int) -> int:
    seconds = int(value)
    assert 1 <= seconds <= period
    return seconds


async def test_past_the_limit_a_request_is_429_with_retry_after_and_ratelimit_headers(serve):
    async with serve(rate_limit="3/hour") as client:
        remaining = []
        for _ in range(3):
            response = await client.get("/assistants")
            assert response.status_code == 200
            assert response.headers["RateLimit-Limit"] == "3"
            window_seconds(response.headers["RateLimit-Reset"], HOUR)
            remaining.append(response.headers["RateLimit-Remaining"])
        assert remaining == ["2", "1", "0"]

        refused = await client.get("/assistants")
        assert refused.status_code == 429
        body = await refused.get_json()
        error = body["error"]
        assert error["code"] == "rate_limited"
        assert error["correlation_id"] == refused.headers["X-Correlation-ID"]
        retry_after = window_seconds(refused.headers["Retry-After"], HOUR)
        assert error["retry_after"] == retry_after
        assert refused.headers["RateLimit-Limit"] == "3"
        assert refused.headers["RateLimit-Remaining"] == "0"
        assert int(refused.headers["RateLimit-Reset"]) == retry_after
        # Every API route counts, POST /chat included.
        assert (await client.post("/chat", json={})).status_code == 429


async def test_health_metrics_and_pages_neither_count_nor_are_refused(serve):
    async with serve(rate_limit="1/hour") as client:
        assert (await client.get("/assistants")).status_code == 200
        for path in ("/healthz", "/readyz", "/openapi.json", "/docs", "/assets/docs.js", "/"):
            for _ in range(2):
                response = await client.get(path)
                assert response.status_code == 200, path
                assert "RateLimit-Limit" not in response.headers
        assert (await client.get("/assistants")).status_code == 429


async def test_without_a_limit_nothing_is_counted_or_shown(serve):
    async with serve() as client:
        for _ in range(5):
            response = await client.get("/assistants")
            assert response.status_code == 200
            assert "RateLimit-Limit" not in response.headers


async def test_a_keys_own_rate_limit_overrides_the_default_and_keys_count_apart(serve):
    keys = [
        {"id": "alice", "key": ALICE, "rate_limit": "2/hour"},
        {"id": "bob", "key": BOB},
    ]
    async with serve(keys=keys, rate_limit="4/hour") as client:
        alice = [(await client.get("/assistants", headers=bearer(ALICE))) for _ in range(3)]
        assert [r.status_code for r in alice] == [200, 200, 429]
        assert alice[0].headers["RateLimit-Limit"] == "2"
        # Bob has the default, and Alice's requests are not his: one address, two callers.
        bob = [(await client.get("/assistants", headers=bearer(BOB))) for _ in range(5)]
        assert [r.status_code for r in bob] == [200, 200, 200, 200, 429]
        assert bob[0].headers["RateLimit-Limit"] == "4"
        # A refused request is not counted: refusals do not push the window further out.
        assert (await bob[4].get_json())["error"]["code"] == "rate_limited"


async def test_a_keys_limit_applies_with_no_default(serve):
    keys = [{"id": "alice", "key": ALICE, "rate_limit": "1/hour"}, {"id": "bob", "key": BOB}]
    async with serve(keys=keys) as client:
        assert (await client.get("/assistants", headers=bearer(ALICE))).status_code == 200
        assert (await client.get("/assistants", headers=bearer(ALICE))).status_code == 429
        for _ in range(3):
            response = await client.get("/assistants", headers=bearer(BOB))
            assert response.status_code == 200
            assert "RateLimit-Limit" not in response.headers


async def test_without_keys_callers_are_their_addresses(serve):
    async with serve(rate_limit="1/hour") as client:
        first = await client.get("/assistants", scope_base=peer("203.0.113.5"))
        assert first.status_code == 200
        again = await client.get("/assistants", scope_base=peer("203.0.113.5"))
        assert again.status_code == 429
        other = await client.get("/assistants", scope_base=peer("203.0.113.6"))
        assert other.status_code == 200


async def test_forwarded_for_is_ignored_from_a_peer_that_is_not_a_trusted_proxy(serve):
    async with serve(rate_limit="1/hour", trusted_proxies="10.0.0.0/8") as client:
        untrusted = peer("203.0.113.5")
        ok = await client.get(
            "/assistants", headers={"X-Forwarded-For": "198.51.100.1"}, scope_base=untrusted
        )
        assert ok.status_code == 200
        # A new made-up address each time does not make a new caller.
        spoofed = await client.get(
            "/assistants", headers={"X-Forwarded-For": "198.51.100.2"}, scope_base=untrusted
        )
        assert spoofed.status_code == 429


async def test_forwarded_for_names_the_client_behind_trusted_proxies(serve):
    async with serve(rate_limit="1/hour", trusted_proxies="10.0.0.0/8") as client:
        proxy = peer("10.0.0.2")

        async def via_proxy(forwarded_for: str) -> int:
            headers = {"X-Forwarded-For": forwarded_for}
            return int(
                (await client.get("/assistants", headers=headers, scope_base=proxy)).status_code
            )

        # Two proxies of ours (10.0.0.9 appended what it saw): the client is 198.51.100.7.
        assert await via_proxy("198.51.100.7, 10.0.0.9") == 200
        assert await via_proxy("198.51.100.7") == 429
        # The client put a made-up address first: the proxy appended the real one after it.
        assert await via_proxy("192.0.2.99, 198.51.100.7") == 429
        # Another client behind the same proxy is counted apart.
        assert await via_proxy("198.51.100.8") == 200
        # The proxy's own requests (no header) count as the proxy.
        assert (await client.get("/assistants", scope_base=proxy)).status_code == 200
        assert (await client.get("/assistants", scope_base=proxy)).status_code == 429


async def test_a_websocket_counts_at_its_handshake_and_for_each_stream_frame(serve, model):
    # Three: the handshake, one message; the second message is refused, the socket stays.
    async with serve(rate_limit="2/hour") as client:
        thread_id = await start(client, scope_base=peer("203.0.113.5"))
        async with client.websocket("/stream", scope_base=peer("203.0.113.7")) as socket:
            await socket.send(json.dumps({"thread_id": thread_id, "message": "hi"}))
            done = await until_run_ends(socket)
            assert done["type"] == "run.completed"
            run_id = done["run_id"]
            await socket.send(json.dumps({"thread_id": thread_id, "message": "hi", "id": "f2"}))
            refused = await receive(socket)
            assert (refused["type"], refused["code"], refused["frame_id"]) == (
                "error",
                "rate_limited",
                "f2",
            )
            assert 1 <= refused["retry_after"] <= HOUR
            assert "run_id" not in refused
            # Still open, and cancel frames never count: the run has ended, so a conflict.
            frame = {"type": "cancel", "thread_id": thread_id, "run_id": run_id, "id": "c"}
            await socket.send(json.dumps(frame))
            answer = await receive(socket)
            assert answer["frame_id"] == "c"
            assert answer.get("code") != "rate_limited"

        with pytest.raises(WebsocketResponseError) as handshake:
            await open_socket(client, "/stream", scope_base=peer("203.0.113.7"))
        response = handshake.value.response
        assert response.status_code == 429
        window_seconds(response.headers["Retry-After"], HOUR)
        assert response.headers["RateLimit-Remaining"] == "0"
        assert (await response.get_json())["error"]["code"] == "rate_limited"


def tokens(input_tokens: int, output_tokens: int, text: str = "Done.") -> ScriptedStep:
    return ScriptedStep(text=text, usage=Usage(input_tokens, output_tokens))


BUDGET_KEYS = [
    {"id": "alice", "key": ALICE, "daily_tokens": 1_000},
    {"id": "bob", "key": BOB},
]


async def test_a_key_that_used_its_daily_tokens_is_refused_runs_with_429_budget_exhausted(
    serve, model
):
    async with serve(keys=BUDGET_KEYS) as client:
        thread_id = await start(client, headers=bearer(ALICE))
        # One run of two steps: 400 + 300 tokens, then 200 + 200: 1 100 in all.
        model.script(
            attrs.evolve(call_tools(call_tool("t.note", {"text": "x"})), usage=Usage(400, 300)),
            tokens(200, 200),
        )
        assert (await chat(client, thread_id, headers=bearer(ALICE))).status_code == 200

        refused = await chat(client, thread_id, headers=bearer(ALICE))
        assert refused.status_code == 429
        error = (await refused.get_json())["error"]
        assert error["code"] == "budget_exhausted"
        retry_after = window_seconds(refused.headers["Retry-After"], DAY)
        assert error["retry_after"] == retry_after
        # What does not start a run still works.
        history = await client.get(f"/threads/{thread_id}/messages", headers=bearer(ALICE))
        assert history.status_code == 200
        # The budget is Alice's: Bob has none.
        bobs = await start(client, headers=bearer(BOB))
        assert (await chat(client, bobs, headers=bearer(BOB))).status_code == 200

        async with client.websocket("/stream", headers=bearer(ALICE)) as socket:
            frame = {"thread_id": thread_id, "message": "hi", "id": "m"}
            await socket.send(json.dumps(frame))
            event = await receive(socket)
            assert (event["type"], event["code"], event["frame_id"]) == (
                "error",
                "budget_exhausted",
                "m",
            )
            assert 1 <= event["retry_after"] <= DAY


async def test_runs_under_the_budget_go_on_until_it_is_used(serve, model):
    async with serve(keys=BUDGET_KEYS) as client:
        thread_id = await start(client, headers=bearer(ALICE))
        model.script(tokens(300, 200), tokens(300, 199), tokens(1, 0))
        assert (await chat(client, thread_id, headers=bearer(ALICE))).status_code == 200
        assert (await chat(client, thread_id, headers=bearer(ALICE))).status_code == 200
        # 999 of 1 000 used: one more run may start (and crosses the budget).
        assert (await chat(client, thread_id, headers=bearer(ALICE))).status_code == 200
        refused = await chat(client, thread_id, headers=bearer(ALICE))
        assert (await refused.get_json())["error"]["code"] == "budget_exhausted"


async def test_a_background_run_is_charged_to_the_key_that_started_it(serve, model):
    async with serve(keys=BUDGET_KEYS) as client:
        thread_id = await start(client, headers=bearer(ALICE))
        model.script(tokens(900, 100))
        body = {"thread_id": thread_id, "message": "hi", "background": True}
        accepted = await client.post("/chat", json=body, headers=bearer(ALICE))
        assert accepted.status_code == 202
        run_id = (await accepted.get_json())["run_id"]
        with anyio.fail_after(5):
            while True:
                run = await client.get(f"/threads/{thread_id}/runs/{run_id}", headers=bearer(ALICE))
                if (await run.get_json())["status"] != "in_progress":
                    break
                await anyio.sleep(0.01)
        refused = await chat(client, thread_id, headers=bearer(ALICE))
        assert (await refused.get_json())["error"]["code"] == "budget_exhausted"


async def test_refusals_are_counted_in_the_metrics(serve, settings):
    metrics = CollectorRegistry()
    observability = observability_from_settings(settings, [], metrics_registry=metrics)
    keys = [{"id": "alice", "key": ALICE, "rate_limit": "1/hour"}]
    async with serve(keys=keys, observability=observability) as client:
        assert (await client.get("/assistants", headers=bearer(ALICE))).status_code == 200
        assert (await client.get("/assistants", headers=bearer(ALICE))).status_code == 429
        assert (await client.get("/assistants", headers=bearer("not-a-key"))).status_code == 401
        assert (await client.get("/assistants")).status_code == 401
    found = {
        sample.labels.get("code"): sample.value
        for family in text_string_to_metric_families(generate_latest(metrics).decode())
        for sample in family.samples
        if sample.name == "assistant_refusals_total"
    }
    assert found == {"rate_limited": 1.0, "unauthenticated": 2.0}


async def test_the_views_that_start_runs_exist(serve):
    async with serve(rate_limit="10/hour") as client:
        endpoints = {rule.endpoint for rule in client.app.url_map.iter_rules()}
    assert endpoints >= RUN_STARTING_ENDPOINTS


async def test_the_served_openapi_document_lists_429_where_limits_apply(serve):
    async with serve(rate_limit="10/hour") as client:
        served = await (await client.get("/openapi.json")).get_json()
    assert served == openapi_document(playground=True, rate_limits=True)
    document = openapi_document(rate_limits=True, api_keys=True, metrics=True)
    validate(document)
    paths = document["paths"]
    limited = paths["/chat"]["post"]["responses"]["429"]
    assert set(limited["headers"]) == {
        "Retry-After",
        "RateLimit-Limit",
        "RateLimit-Remaining",
        "RateLimit-Reset",
    }
    assert "429" in paths["/stream"]["get"]["responses"]
    assert "429" in paths["/ws-tickets"]["post"]["responses"]
    for path in ("/healthz", "/readyz", "/metrics", "/docs", "/openapi.json"):
        assert "429" not in paths[path]["get"]["responses"], path
    assert "429" not in openapi_document()["paths"]["/chat"]["post"]["responses"]
