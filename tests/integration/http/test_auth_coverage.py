"""API keys on every route and frame: 401 without a key, 403 for a foreign assistant, 404 for
another key's threads and runs (and nothing done to them).

The routes come from the app's own URL map, so a route added later is
covered without anyone remembering to list it here.
"""

from __future__ import annotations

import json
import re
from typing import Any

import anyio
import attrs
import pytest
from http_support import open_socket, start
from quart.testing.connections import WebsocketResponseError

from assistant_service.adapters.llm.scripted import call_tool, call_tools, reply
from assistant_service.domain.models import AssistantProfile, RunLimits
from assistant_service.entrypoints.http.auth import ApiKeys
from assistant_service.entrypoints.http.services import Services

pytestmark = pytest.mark.anyio

ALICE = "alice-key-0123456789abcdef"
BOB = "bob-key-fedcba9876543210zz"
CAROL = "carol-key-only-other-assistant"
KEYS = [
    {"id": "alice", "key": ALICE},
    {"id": "bob", "key": BOB},
    {"id": "carol", "key": CAROL, "assistants": ["other"]},
]
# What is open with keys on: health, and the pages (they hold no data; the playground asks).
OPEN = {"/healthz", "/readyz", "/", "/docs", "/openapi.json", "/assets/<name>"}
DECISIONS = {"decisions": [{"call_id": "c_n", "approve": True}]}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def profile(registry) -> AssistantProfile:
    # t.note needs a person's approval: a run stops for it and waits.
    return AssistantProfile(
        id="test",
        model="scripted",
        tools=tuple(registry.names()),
        limits=RunLimits(tool_timeout=30.0, max_message_length=500, max_tool_rounds=2),
        approval_required=("t.note",),
    )


@pytest.fixture
async def services(services: Services, profile: AssistantProfile) -> Services:
    await services.configs.put(attrs.evolve(profile, id="other"))
    return attrs.evolve(services, api_keys=ApiKeys.parse(json.dumps(KEYS)))


def rules(app: Any) -> list[Any]:
    return list(app.url_map.iter_rules())


def concrete(rule: str, **values: str) -> str:
    return re.sub(r"<(?:[^:>]+:)?([^>]+)>", lambda m: values.get(m.group(1), "x1"), rule)


async def test_every_route_but_health_and_pages_is_401_without_a_key(client):
    app = client.app
    assert {rule.rule for rule in rules(app)} >= OPEN
    checked = []
    for rule in rules(app):
        if rule.rule in OPEN:
            continue
        path = concrete(rule.rule, thread_id="thread_x", run_id="run_x")
        if rule.websocket:
            with pytest.raises(WebsocketResponseError) as refused:
                await open_socket(client, path)
            response = refused.value.response
            assert response.status_code == 401, path
            checked.append(("WS", rule.rule))
            continue
        for method in sorted(rule.methods - {"HEAD"}):
            for headers in ({}, bearer("not-a-key-at-all-0000")):
                response = await client.open(path, method=method, headers=headers, json={})
                assert response.status_code == 401, (method, path, headers)
                assert response.headers["WWW-Authenticate"].startswith("Bearer")
                assert (await response.get_json())["error"]["code"] == "unauthenticated"
            checked.append((method, rule.rule))
    # The map really was walked: the run-control routes and the socket are in it.
    assert ("POST", "/threads/<thread_id>/runs/<run_id>/approvals") in checked
    assert ("WS", "/stream") in checked
    assert ("POST", "/ws-tickets") in checked


async def test_an_assistant_the_key_may_not_use_is_403_and_one_it_may_is_not(client):
    for query in ({}, {"assistant_id": "test"}):
        response = await client.get("/start", query_string=query, headers=bearer(CAROL))
        assert response.status_code == 403, query
        assert (await response.get_json())["error"]["code"] == "forbidden"
    thread_id = await start(client, headers=bearer(CAROL), assistant_id="other")
    chat = await client.post(
        "/chat", json={"thread_id": thread_id, "message": "hi"}, headers=bearer(CAROL)
    )
    assert chat.status_code == 200


async def test_the_assistants_a_key_may_not_use_are_not_listed_to_it(client):
    listed = await (await client.get("/assistants", headers=bearer(CAROL))).get_json()
    assert [a["id"] for a in listed["assistants"]] == ["other"]
    listed = await (await client.get("/assistants", headers=bearer(ALICE))).get_json()
    assert [a["id"] for a in listed["assistants"]] == ["other", "test"]


@attrs.frozen
class AlicesRuns:
    thread: str  # Alice's thread
    stopped: str  # her run that waits for an approval
    running: str  # her background run, in a slow tool
    bobs_thread: str


@pytest.fixture
async def alices_runs(client, model, probe) -> AlicesRuns:
    alice = bearer(ALICE)
    thread = await start(client, headers=alice)
    # One step each, in order: the script is one queue for every run.
    model.script(call_tools(call_tool("t.note", {"text": "pay"}, call_id="c_n")))
    body = await (
        await client.post("/chat", json={"thread_id": thread, "message": "pay"}, headers=alice)
    ).get_json()
    assert body["status"] == "requires_approval"
    stopped = body["run_id"]
    second = await start(client, headers=alice)
    model.script(call_tools(call_tool("t.wait", {"seconds": 30})), reply("waited"))
    response = await client.post(
        "/chat", json={"thread_id": second, "message": "wait", "background": True}, headers=alice
    )
    running = (await response.get_json())["run_id"]
    with anyio.fail_after(5):
        assert probe.started is not None
        await probe.started.wait()
    return AlicesRuns(thread, stopped, running, await start(client, headers=bearer(BOB)))


async def assert_untouched(client, runs: AlicesRuns, probe) -> None:
    """Alice's runs are as she left them, and she can still act on them."""
    alice = bearer(ALICE)
    stopped = await (
        await client.get(f"/threads/{runs.thread}/runs/{runs.stopped}", headers=alice)
    ).get_json()
    assert stopped["status"] == "requires_approval"
    assert stopped.get("resumed_by") is None
    assert probe.thread_names == []  # t.note never ran
    assert not probe.cancelled
    approved = await client.post(
        f"/threads/{runs.thread}/runs/{runs.stopped}/approvals", json=DECISIONS, headers=alice
    )
    assert approved.status_code == 200
    assert (await approved.get_json())["status"] == "completed"
    probe.release.set()  # the background run ends on its own


async def test_every_route_naming_another_keys_thread_or_run_is_404_and_does_nothing(
    client, alices_runs, probe
):
    runs = alices_runs
    bob = bearer(BOB)
    thread_rules = [r for r in rules(client.app) if "<thread_id>" in r.rule and not r.websocket]
    assert len(thread_rules) >= 5  # run, cancel, approvals, events, messages
    tried = 0
    for rule in thread_rules:
        for thread in (runs.thread, runs.bobs_thread):  # Alice's, or Bob's own with her run
            for run in (runs.stopped, runs.running):
                if thread == runs.bobs_thread and "<run_id>" not in rule.rule:
                    continue  # Bob's own thread, nothing of Alice's named
                path = concrete(rule.rule, thread_id=thread, run_id=run)
                for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                    response = await client.open(path, method=method, headers=bob, json=DECISIONS)
                    assert response.status_code == 404, (method, path)
                    assert (await response.get_json())["error"]["code"] == "not_found"
                    tried += 1
    for body in (
        {"thread_id": runs.thread, "message": "hi"},
        {"thread_id": runs.thread, "message": "hi", "background": True},
        {"thread_id": runs.thread, "message": "hi", "on_disconnect": "continue"},
    ):
        response = await client.post("/chat", json=body, headers=bob)
        assert response.status_code == 404, body
    streamed = await client.post(
        "/chat",
        json={"thread_id": runs.thread, "message": "hi"},
        headers={**bob, "Accept": "text/event-stream"},
    )
    assert streamed.status_code == 404
    assert tried >= 14
    await assert_untouched(client, runs, probe)


async def test_every_frame_naming_another_keys_thread_or_run_is_refused_and_does_nothing(
    client, alices_runs, probe
):
    runs = alices_runs
    frames: list[dict[str, Any]] = [
        {"type": "message", "thread_id": runs.thread, "message": "hi"},
        {"type": "message", "thread_id": runs.thread, "message": "hi", "on_disconnect": "continue"},
    ]
    for thread in (None, runs.thread, runs.bobs_thread):
        named = {} if thread is None else {"thread_id": thread}
        frames += [
            {"type": "cancel", "run_id": runs.running, **named},
            {"type": "cancel", "run_id": runs.stopped, **named},
            {"type": "approvals", "run_id": runs.stopped, **DECISIONS, **named},
            {"type": "resume", "run_id": runs.stopped, **named},
            {"type": "resume", "run_id": runs.running, **named},
        ]
    async with client.websocket("/stream", headers=bearer(BOB)) as socket:
        for n, frame in enumerate(frames):
            await socket.send(json.dumps({**frame, "id": f"f{n}"}))
            with anyio.fail_after(5):
                event = json.loads(await socket.receive())
            assert (event["type"], event.get("code"), event.get("frame_id")) == (
                "error",
                "not_found",
                f"f{n}",
            ), frame
            assert "run_id" not in event, frame  # nothing of Alice's run is told
        # The socket is still Bob's to use, on his own thread.
        await socket.send(json.dumps({"thread_id": runs.bobs_thread, "message": "mine"}))
        with anyio.fail_after(5):
            assert json.loads(await socket.receive())["type"] == "run.started"
    await assert_untouched(client, runs, probe)
