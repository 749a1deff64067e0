"""API keys: 401 without one, 403 for an assistant it may not use, threads owned by their key."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import attrs
import pytest
from http_support import open_socket, start
from quart.testing.connections import WebsocketResponseError

from assistant_service.adapters.state.memory import InMemoryStateStore
from assistant_service.domain.errors import ConfigurationError
from assistant_service.entrypoints.http.auth import ApiKeys, WebSocketTickets
from assistant_service.entrypoints.http.services import Services

pytestmark = pytest.mark.anyio

ALICE = "alice-key-0123456789abcdef"
BOB = "bob-key-fedcba9876543210zz"
CAROL = "carol-key-only-other-assistant"
KEYS = [
    {"id": "alice", "key": ALICE},
    {"id": "bob", "key_sha256": hashlib.sha256(BOB.encode()).hexdigest()},
    {"id": "carol", "key": CAROL, "assistants": ["other"]},
]


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def services(services: Services) -> Services:
    return attrs.evolve(services, api_keys=ApiKeys.parse(json.dumps(KEYS)))


async def test_requests_without_a_valid_key_are_401_with_a_bearer_challenge(client):
    for headers in ({}, bearer("not-a-key"), {"X-API-Key": "nope"}, {"Authorization": "Basic x"}):
        response = await client.get("/start", headers=headers)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert (await response.get_json())["error"]["code"] == "unauthenticated"


async def test_a_missing_key_is_told_where_to_put_one(client):
    # The hint must survive the shape-based masking ("Bearer <key>" once came out "Bearer ***").
    message = (await (await client.get("/start")).get_json())["error"]["message"]
    assert "***" not in message
    assert "Authorization" in message
    assert "X-API-Key" in message


async def test_health_stays_open(client):
    assert (await client.get("/healthz")).status_code == 200
    assert (await client.get("/readyz")).status_code == 200


async def test_a_key_in_either_header_chats_and_its_id_is_in_the_logs(client, read_logs):
    thread_id = await start(client, headers=bearer(ALICE))
    response = await client.post(
        "/chat", json={"thread_id": thread_id, "message": "hi"}, headers={"X-API-Key": ALICE}
    )
    assert response.status_code == 200
    started = [line for line in read_logs() if line["message"] == "conversation.started"]
    assert started[0]["key_id"] == "alice"
    assert ALICE not in json.dumps(read_logs())


async def test_a_thread_is_unknown_to_every_other_key(client):
    thread_id = await start(client, headers=bearer(ALICE))
    chat = await client.post(
        "/chat", json={"thread_id": thread_id, "message": "hi"}, headers=bearer(BOB)
    )
    assert chat.status_code == 404
    messages = await client.get(f"/threads/{thread_id}/messages", headers=bearer(BOB))
    assert messages.status_code == 404
    run = await client.get(f"/threads/{thread_id}/runs/run_x", headers=bearer(BOB))
    assert run.status_code == 404
    assert (
        await client.get(f"/threads/{thread_id}/messages", headers=bearer(ALICE))
    ).status_code == 200


async def test_an_assistant_the_key_may_not_use_is_403(client):
    response = await client.get("/start", headers=bearer(CAROL))
    assert response.status_code == 403
    assert (await response.get_json())["error"]["code"] == "forbidden"


async def receive(socket: Any) -> dict[str, Any]:
    return json.loads(await socket.receive())


async def test_a_websocket_authenticates_with_the_headers(client):
    thread_id = await start(client, headers=bearer(ALICE))
    async with client.websocket("/stream", headers=bearer(ALICE)) as socket:
        await socket.send(json.dumps({"thread_id": thread_id, "message": "hi"}))
        assert (await receive(socket))["type"] == "run.started"


async def test_a_websocket_without_a_key_is_refused(client):
    with pytest.raises(WebsocketResponseError) as refused:
        await open_socket(client, "/stream")
    assert refused.value.response.status_code == 401
    assert refused.value.response.headers["WWW-Authenticate"].startswith("Bearer")


async def test_another_keys_thread_is_unknown_on_a_socket(client):
    thread_id = await start(client, headers=bearer(ALICE))
    async with client.websocket("/stream", headers=bearer(BOB)) as socket:
        await socket.send(json.dumps({"thread_id": thread_id, "message": "hi", "id": "f1"}))
        event = await receive(socket)
        assert (event["type"], event["code"], event["frame_id"]) == ("error", "not_found", "f1")


async def test_a_ticket_opens_one_socket_once(client):
    thread_id = await start(client, headers=bearer(ALICE))
    issued = await client.post("/ws-tickets", headers=bearer(ALICE))
    assert issued.status_code == 201
    ticket = (await issued.get_json())["ticket"]
    async with client.websocket(f"/stream?ticket={ticket}") as socket:
        await socket.send(json.dumps({"thread_id": thread_id, "message": "hi"}))
        assert (await receive(socket))["type"] == "run.started"
    with pytest.raises(WebsocketResponseError) as used:
        await open_socket(client, f"/stream?ticket={ticket}")
    assert used.value.response.status_code == 401
    assert (await client.post("/ws-tickets")).status_code == 401


async def test_tickets_expire_and_are_single_use():
    now = [0.0]
    tickets = WebSocketTickets(InMemoryStateStore(clock=lambda: now[0]), ttl=30.0)
    first, second = await tickets.issue("alice"), await tickets.issue("alice")
    assert await tickets.redeem(first) == "alice"
    assert await tickets.redeem(first) is None
    now[0] = 31.0
    assert await tickets.redeem(second) is None
    assert await tickets.redeem("not-a-ticket") is None


def test_a_ticket_lives_30_seconds_at_most():
    with pytest.raises(ValueError, match="ttl"):
        WebSocketTickets(InMemoryStateStore(), ttl=31.0)


@pytest.mark.parametrize(
    ("raw", "names"),
    [
        ("not json", "not valid JSON"),
        ("[]", "non-empty"),
        ('[{"id": "a"}]', "exactly one of key, key_sha256"),
        ('[{"id": "a", "key": "short"}]', "16 characters"),
        ('[{"id": "a", "key_sha256": "XYZ"}]', "64 lowercase hex"),
        ('[{"id": "a", "key": "0123456789abcdefg", "colour": 1}]', "unknown fields colour"),
        ('[{"id": "a", "key": "0123456789abcdefg", "daily_tokens": 0}]', "daily_tokens"),
    ],
)
def test_malformed_keys_stop_start_up_naming_the_fault(raw, names):
    with pytest.raises(ConfigurationError, match=names):
        ApiKeys.parse(raw)


async def test_the_composition_reads_api_keys_and_holds_their_values():
    from assistant_service.domain.secrets import MASKED, mask_secrets  # noqa: PLC0415
    from assistant_service.entrypoints.composition import (  # noqa: PLC0415
        services_from_settings,
    )
    from assistant_service.entrypoints.settings import load_settings  # noqa: PLC0415

    key = "composed-key-9f8e7d6c5b4a"
    settings = load_settings({"API_KEYS": json.dumps([{"id": "ops", "key": key}])})
    services = await services_from_settings(settings)
    assert services.api_keys is not None
    assert services.api_keys.authenticate(key) is not None
    assert mask_secrets(f"echo {key}") == f"echo {MASKED}"
    with pytest.raises(ConfigurationError, match="API_KEYS_SECRET"):
        await services_from_settings(load_settings({"API_KEYS_SECRET": "missing"}))


async def test_the_pages_stay_open_and_the_document_describes_the_keys(client, services):
    # The playground asks for a key itself: its page and assets carry no data.
    for path in ("/", "/docs", "/openapi.json", "/assets/playground.js"):
        assert (await client.get(path)).status_code == 200, path
    assert (await client.get("/assistants")).status_code == 401
    document = await (await client.get("/openapi.json")).get_json()
    assert "/ws-tickets" in document["paths"]
    assert set(document["components"]["securitySchemes"]) == {"bearer", "apiKey"}
    assert "security" in document["paths"]["/chat"]["post"]
    assert "401" in document["paths"]["/chat"]["post"]["responses"]
    assert "security" not in document["paths"]["/healthz"]["get"]
    routes = {rule.rule for rule in client.app.url_map.iter_rules()}
    assert "/ws-tickets" in routes
