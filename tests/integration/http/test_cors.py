"""CORS: preflights answered for listed origins on every route, headers on answers, sockets' Origin.

API keys are on throughout: a preflight must pass without one (browsers send
none), and a listed origin must be able to read a 401.
"""

from __future__ import annotations

import json
import re
from typing import Any

import attrs
import pytest
from http_support import open_socket, start
from quart.testing.connections import WebsocketResponseError

from assistant_service.entrypoints.http.auth import ApiKeys
from assistant_service.entrypoints.http.cors import CorsPolicy, parse_origin, parse_origins
from assistant_service.entrypoints.http.services import Services
from assistant_service.entrypoints.settings import Settings, SettingsError, load_settings

pytestmark = pytest.mark.anyio

ALLOWED = "https://app.example.com"
OTHER = "https://evil.example.net"
KEY = "alice-key-0123456789abcdef"
BEARER = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return attrs.evolve(settings, cors_origins=(ALLOWED, "http://localhost:5173"))


@pytest.fixture
def services(services: Services) -> Services:
    keys = ApiKeys.parse(json.dumps([{"id": "alice", "key": KEY}]))
    return attrs.evolve(services, api_keys=keys)


def http_routes(app: Any) -> list[tuple[str, str]]:
    """(method, a concrete path) for every HTTP route the app serves."""
    routes = []
    for rule in app.url_map.iter_rules():
        if rule.websocket:
            continue
        path = re.sub(r"<[^>]+>", "x1", rule.rule)
        routes.extend((method, path) for method in sorted(rule.methods - {"HEAD", "OPTIONS"}))
    return routes


def preflight(origin: str, method: str = "POST") -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "authorization, content-type",
    }


def vary(response: Any) -> set[str]:
    return {part.strip().lower() for part in response.headers.get("Vary", "").split(",")}


async def test_a_listed_origins_preflight_is_answered_on_every_route_without_a_key(client):
    routes = http_routes(client.app)
    assert ("POST", "/threads/x1/runs/x1/cancel") in routes  # the map is the app's
    for method, path in routes:
        response = await client.options(path, headers=preflight(ALLOWED, method))
        assert response.status_code == 204, (method, path)
        headers = response.headers
        assert headers["Access-Control-Allow-Origin"] == ALLOWED
        assert method in headers["Access-Control-Allow-Methods"]
        allowed = {h.strip().lower() for h in headers["Access-Control-Allow-Headers"].split(",")}
        assert {"authorization", "x-api-key", "content-type", "x-correlation-id"} <= allowed
        assert int(headers["Access-Control-Max-Age"]) > 0
        assert "origin" in vary(response)
        assert headers["X-Correlation-ID"]  # the correlation middleware still wraps it


async def test_origins_are_compared_as_browsers_write_them(client):
    # Origin headers come lower-case with no default port; the list was normalised.
    response = await client.options("/chat", headers=preflight("http://localhost:5173"))
    assert response.status_code == 204
    for near_miss in ("http://app.example.com", "https://app.example.com:8443", "null"):
        response = await client.options("/chat", headers=preflight(near_miss))
        assert response.status_code == 403, near_miss


async def test_another_origins_preflight_is_refused_with_no_cors_headers(client):
    response = await client.options("/chat", headers=preflight(OTHER))
    assert response.status_code == 403
    body = await response.get_json()
    assert body["error"]["code"] == "origin_refused"
    assert body["error"]["correlation_id"] == response.headers["X-Correlation-ID"]
    assert not [h for h in response.headers if h[0].lower().startswith("access-control-")]


async def test_answers_to_a_listed_origin_say_so_and_expose_the_headers_a_client_needs(client):
    thread_id = await start(client, headers={**BEARER, "Origin": ALLOWED})
    response = await client.post(
        "/chat",
        json={"thread_id": thread_id, "message": "hi"},
        headers={**BEARER, "Origin": ALLOWED},
    )
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == ALLOWED
    exposed = {
        h.strip().lower() for h in response.headers["Access-Control-Expose-Headers"].split(",")
    }
    expected = {"x-correlation-id", "retry-after", "ratelimit-limit", "ratelimit-remaining"}
    assert expected | {"ratelimit-reset"} <= exposed
    assert "origin" in vary(response)
    assert "Access-Control-Allow-Credentials" not in response.headers  # keys, never cookies


async def test_a_listed_origin_can_read_its_401(client):
    response = await client.get("/start", headers={"Origin": ALLOWED})
    assert response.status_code == 401
    assert response.headers["Access-Control-Allow-Origin"] == ALLOWED


async def test_answers_to_another_origin_carry_no_cors_headers_but_vary(client):
    response = await client.get("/start", headers={**BEARER, "Origin": OTHER})
    assert response.status_code == 200  # CORS does not refuse requests: browsers hide answers
    assert "Access-Control-Allow-Origin" not in response.headers
    assert "origin" in vary(response)


async def test_the_open_api_document_has_one_allow_origin_header(client):
    mine = await client.get("/openapi.json", headers={"Origin": ALLOWED})
    assert mine.headers.getlist("Access-Control-Allow-Origin") == [ALLOWED]
    public = await client.get("/openapi.json", headers={"Origin": OTHER})
    assert public.headers.getlist("Access-Control-Allow-Origin") == ["*"]


async def refused_handshake(client: Any, headers: dict[str, str]) -> Any:
    with pytest.raises(WebsocketResponseError) as refused:
        await open_socket(client, "/stream", headers=headers)
    return refused.value.response


async def test_a_socket_from_another_origin_is_refused_before_the_key_check(client):
    response = await refused_handshake(client, {**BEARER, "Origin": OTHER})
    assert response.status_code == 403
    assert (await response.get_json())["error"]["code"] == "origin_refused"


@pytest.mark.parametrize(
    "origin",
    [ALLOWED, None, "http://localhost", "https://localhost:443"],
    ids=["listed", "no-origin", "same-origin", "same-origin-default-port"],
)
async def test_a_socket_from_a_listed_own_or_no_origin_goes_on_to_the_key_check(client, origin):
    # The test client's requests come to Host: localhost.
    headers = {} if origin is None else {"Origin": origin}
    thread_id = await start(client, headers=BEARER)
    async with client.websocket("/stream", headers={**headers, **BEARER}) as socket:
        await socket.send(json.dumps({"thread_id": thread_id, "message": "hi"}))
        assert json.loads(await socket.receive())["type"] == "run.started"
    assert (await refused_handshake(client, headers)).status_code == 401


@pytest.mark.parametrize("origin", ["http://localhost:8000", "http://localhost.evil.example"])
async def test_a_near_miss_of_the_own_origin_is_another_origin(client, origin):
    assert (await refused_handshake(client, {**BEARER, "Origin": origin})).status_code == 403


class TestWithNoOriginsListed:
    """The default: no response carries CORS headers; sockets from other sites are refused."""

    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        return attrs.evolve(settings, cors_origins=())

    async def test_no_cors_headers_and_no_preflight(self, client):
        response = await client.get("/start", headers={**BEARER, "Origin": ALLOWED})
        assert response.status_code == 200
        assert not [h for h in response.headers if h[0].lower().startswith("access-control-")]
        assert "origin" not in vary(response)
        assert (await client.options("/chat", headers=preflight(ALLOWED))).status_code == 403

    async def test_only_the_services_own_pages_open_sockets(self, client):
        assert (await refused_handshake(client, {**BEARER, "Origin": ALLOWED})).status_code == 403
        thread_id = await start(client, headers=BEARER)
        headers = {**BEARER, "Origin": "http://localhost"}
        async with client.websocket("/stream", headers=headers) as socket:
            await socket.send(json.dumps({"thread_id": thread_id, "message": "hi"}))
            assert json.loads(await socket.receive())["type"] == "run.started"


class TestEveryOrigin:
    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        return attrs.evolve(settings, cors_origins=("*",))

    async def test_any_origin_is_answered_with_its_own_name(self, client):
        response = await client.options("/chat", headers=preflight(OTHER))
        assert response.status_code == 204
        assert response.headers["Access-Control-Allow-Origin"] == OTHER
        answer = await client.get("/start", headers={**BEARER, "Origin": OTHER})
        assert answer.headers["Access-Control-Allow-Origin"] == OTHER


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("https://App.Example.com/", "https://app.example.com"),
        ("https://app.example.com:443", "https://app.example.com"),
        ("http://app.example.com:80", "http://app.example.com"),
        ("http://localhost:5173", "http://localhost:5173"),
        ("http://[::1]:8000", "http://[::1]:8000"),
    ],
)
def test_origins_are_normalised_as_browsers_send_them(raw, expected):
    assert parse_origin(raw) == expected


@pytest.mark.parametrize(
    "raw",
    ["app.example.com", "ftp://app.example.com", "https://a.com/path", "https://u:p@a.com", "null"],
)
def test_what_is_not_an_origin_is_refused(raw):
    with pytest.raises(ValueError, match=r"."):
        parse_origin(raw)


def test_cors_origins_is_read_from_the_environment_and_checked():
    settings = load_settings({"CORS_ORIGINS": " https://A.example.com, http://localhost:5173 ,"})
    assert settings.cors_origins == ("https://a.example.com", "http://localhost:5173")
    assert load_settings({}).cors_origins == ()
    with pytest.raises(SettingsError, match=r"CORS_ORIGINS: .*'https://a.com/x'"):
        load_settings({"CORS_ORIGINS": "https://ok.example.com,https://a.com/x"})
    # Every origin without keys would let any page spend the budget through its visitors.
    with pytest.raises(SettingsError, match=r"CORS_ORIGINS=\* requires API keys"):
        load_settings({"CORS_ORIGINS": "*"})
    assert load_settings({"CORS_ORIGINS": "*", "API_KEYS_SECRET": "keys"}).cors_origins == ("*",)
    assert parse_origins("https://a.com, https://a.com:443") == ("https://a.com",)


def test_an_overlong_or_garbled_origin_is_not_allowed():
    policy = CorsPolicy.of([ALLOWED])
    assert not policy.allows("https://app.example.com" + "a" * 600)
    assert not policy.allows("https://app.example.com:notaport")
    assert not policy.allows_socket("https://x" * 100, "x")
    assert policy.allows_socket(None, None)
