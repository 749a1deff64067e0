"""``/openapi.json`` against the app it describes; ``/docs``, ``/``, ``/assets`` and ``/assistants``."""

from __future__ import annotations

import json
import re
from typing import Any

import attrs
import jsonschema
import pytest
from http_support import start
from openapi_spec_validator import validate

from assistant_service.adapters.llm.scripted import call_tool, call_tools, reply
from assistant_service.entrypoints.http.app import create_app
from assistant_service.entrypoints.http.openapi import openapi_document
from assistant_service.entrypoints.observability import Observability
from assistant_service.entrypoints.settings import Environment, Switch

pytestmark = pytest.mark.anyio

IGNORED_METHODS = {"HEAD", "OPTIONS"}


def schema_of(document: dict[str, Any], name: str) -> jsonschema.Draft202012Validator:
    """A validator for ``components.schemas[name]``, its ``$ref``s resolved in the document."""
    root = {"$ref": f"#/components/schemas/{name}", "components": document["components"]}
    return jsonschema.Draft202012Validator(root)


def routes_of(app) -> set[tuple[str, str]]:
    routes = set()
    for rule in app.url_map.iter_rules():
        path = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule.rule)
        if rule.websocket:
            routes.add((path, "WEBSOCKET"))
            continue
        routes.update((path, method) for method in rule.methods - IGNORED_METHODS)
    return routes


def documented(document: dict[str, Any]) -> set[tuple[str, str]]:
    routes = set()
    for path, item in document["paths"].items():
        for method, operation in item.items():
            websocket = "WebSocket" in operation.get("summary", "")
            routes.add((path, "WEBSOCKET" if websocket else method.upper()))
    return routes


@pytest.mark.parametrize("metrics", [False, True])
@pytest.mark.parametrize("playground", [Switch.ON, Switch.OFF])
async def test_the_document_names_every_route_and_only_those(services, metrics, playground):
    settings = attrs.evolve(services.settings, playground=playground)
    observability = Observability(metrics=metrics, serve_metrics_route=metrics)
    app = create_app(attrs.evolve(services, settings=settings, observability=observability))
    async with app.test_app() as test_app:
        response = await test_app.test_client().get("/openapi.json")
        document = await response.get_json()
    assert documented(document) == routes_of(app)
    assert (
        ("/", "GET") in routes_of(app)
        if playground is Switch.ON
        else ("/", "GET") not in routes_of(app)
    )
    assert document == openapi_document(metrics=metrics, playground=playground is Switch.ON)


@pytest.mark.parametrize("metrics", [False, True])
@pytest.mark.parametrize("playground", [False, True])
def test_the_document_is_valid_openapi_3_1(metrics, playground):
    document = openapi_document(metrics=metrics, playground=playground)
    assert document["openapi"] == "3.1.0"
    validate(document)


def test_every_error_status_is_documented_with_the_error_body():
    document = openapi_document()
    for path, item in document["paths"].items():
        for method, operation in item.items():
            for status, answer in operation["responses"].items():
                if status.startswith(("4", "5")) and path != "/readyz":
                    assert answer["content"]["application/json"]["schema"] == {
                        "$ref": "#/components/schemas/Error"
                    }, (method, path, status)


async def test_answers_conform_to_the_document(client, model):
    document = openapi_document()
    thread_id = await start(client)
    model.script(call_tools(call_tool("t.note", {"text": "hi"})), reply("Done."))
    chat = await client.post("/chat", json={"thread_id": thread_id, "message": "go"})
    schema_of(document, "ChatResult").validate(await chat.get_json())
    run_id = (await chat.get_json())["run_id"]
    run = await client.get(f"/threads/{thread_id}/runs/{run_id}")
    schema_of(document, "Run").validate(await run.get_json())
    history = await client.get(f"/threads/{thread_id}/messages?limit=1")
    schema_of(document, "HistoryPage").validate(await history.get_json())
    bad = await client.get(f"/threads/{thread_id}/messages?limit=x")
    assert bad.status_code == 422
    schema_of(document, "Error").validate(await bad.get_json())
    assistants = await client.get("/assistants")
    schema_of(document, "Assistants").validate(await assistants.get_json())
    ready = await client.get("/readyz")
    schema_of(document, "Readiness").validate(await ready.get_json())


async def test_every_websocket_event_conforms_to_the_event_schema(client, model):
    event_schema = schema_of(openapi_document(), "Event")
    thread_id = await start(client)
    model.script(call_tools(call_tool("t.note", {"text": "hi"})), reply("Done."))
    seen = []
    async with client.websocket("/stream") as socket:
        await socket.send(json.dumps({"thread_id": thread_id, "message": "go", "id": "f1"}))
        while not seen or seen[-1]["type"] != "run.completed":
            seen.append(json.loads(await socket.receive()))
        await socket.send(json.dumps({"type": "cancel", "run_id": seen[0]["run_id"], "id": "f2"}))
        seen.append(json.loads(await socket.receive()))  # 409: the run has ended
        await socket.send("not json")
        seen.append(json.loads(await socket.receive()))
    for event in seen:
        event_schema.validate(event)
    assert {event["type"] for event in seen} >= {
        "run.started",
        "tool_call.started",
        "tool_call.completed",
        "message.delta",
        "message.completed",
        "run.completed",
        "error",
    }


async def test_assistants_lists_the_profiles_and_marks_the_default(client, profile):
    body = await (await client.get("/assistants")).get_json()
    assert body == {
        "assistants": [
            {
                "id": profile.id,
                "model": profile.model,
                "tools": list(profile.tools),
                "approval_required": [],
                "default": True,
            }
        ]
    }


async def test_the_playground_is_served_under_a_strict_policy(client):
    page = await client.get("/", headers={"Host": "example.test:8000"})
    assert page.status_code == 200
    assert page.content_type.startswith("text/html")
    policy = page.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy
    assert "script-src 'self';" in policy
    assert "connect-src 'self' ws://example.test:8000 wss://example.test:8000;" in policy
    assert "unsafe-inline" not in policy
    html = (await page.get_data()).decode()
    # No inline script or style, nothing from elsewhere: every src and href is local.
    assert "<script>" not in html
    assert "style=" not in html
    assert re.findall(r'(?:src|href)="([^"]+)"', html)
    local = ("/", "data:,")  # data:, is the empty favicon (no request for /favicon.ico)
    assert all(url.startswith(local) for url in re.findall(r'(?:src|href)="([^"]+)"', html))


async def test_a_host_header_that_is_not_a_host_adds_no_socket_source(client):
    page = await client.get("/docs", headers={"Host": "evil; script-src *"})
    assert "connect-src 'self';" in page.headers["Content-Security-Policy"]


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("playground.js", "text/javascript"),
        ("playground.css", "text/css"),
        ("docs.js", "text/javascript"),
    ],
)
async def test_assets_are_served_from_the_package(client, name, kind):
    response = await client.get(f"/assets/{name}")
    assert response.status_code == 200
    assert response.content_type.startswith(kind)
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    body = (await response.get_data()).decode()
    assert "http://" not in body
    assert "https://" not in body


async def test_an_unknown_asset_is_a_404(client):
    response = await client.get("/assets/playground.html")
    assert response.status_code == 404
    assert (await response.get_json())["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    ("environment", "playground", "served"),
    [
        (Environment.DEVELOPMENT, None, True),
        (Environment.PRODUCTION, None, False),
        (Environment.PRODUCTION, Switch.ON, True),
        (Environment.DEVELOPMENT, Switch.OFF, False),
    ],
)
async def test_the_playground_setting(services, environment, playground, served):
    settings = attrs.evolve(services.settings, environment=environment, playground=playground)
    app = create_app(attrs.evolve(services, settings=settings))
    async with app.test_app() as test_app:
        response = await test_app.test_client().get("/")
        docs = await test_app.test_client().get("/docs")
    assert response.status_code == (200 if served else 404)
    assert docs.status_code == 200
