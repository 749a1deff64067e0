"""Run control in-process: SSE ids, approvals, cancel, replay, background runs, typed WS frames."""

from __future__ import annotations

import json

import anyio
import attrs
import pytest
from http_support import start

from assistant_service.adapters.llm.scripted import call_tool, call_tools, reply
from assistant_service.domain.models import AssistantProfile, RunLimits

pytestmark = pytest.mark.anyio

SSE = {"Accept": "text/event-stream"}


@pytest.fixture
def profile(registry) -> AssistantProfile:
    # t.note needs a person's approval here; t.wait does not.
    return AssistantProfile(
        id="test",
        model="scripted",
        tools=tuple(registry.names()),
        limits=RunLimits(tool_timeout=5.0, max_message_length=500, max_tool_rounds=2),
        approval_required=("t.note",),
    )


def sse_frames(raw: bytes) -> list[tuple[str | None, dict]]:
    """(the ``id:`` line, the payload) of every SSE frame."""
    frames = []
    for block in raw.decode().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "data" in fields:
            frames.append((fields.get("id"), json.loads(fields["data"])))
    return frames


async def error_of(response) -> tuple[int, dict]:
    return response.status_code, (await response.get_json())["error"]


async def test_sse_frames_carry_the_event_seq_as_their_id(client, model):
    thread_id = await start(client)
    model.script(reply("hello there"))
    response = await client.post(
        "/chat", json={"thread_id": thread_id, "message": "hi"}, headers=SSE
    )
    frames = sse_frames(await response.get_data())
    seqs = [payload["seq"] for _, payload in frames]
    assert seqs == list(range(1, len(frames) + 1))
    assert [frame_id for frame_id, _ in frames] == [str(seq) for seq in seqs]
    run_ids = {payload["run_id"] for _, payload in frames}
    assert len(run_ids) == 1


async def test_approve_over_http_runs_the_call_and_answers_with_the_result(client, model, probe):
    thread_id = await start(client)
    model.script(call_tools(call_tool("t.note", {"text": "pay"}, call_id="c_n")), reply("Paid."))
    response = await client.post("/chat", json={"thread_id": thread_id, "message": "pay"})
    body = await response.get_json()
    assert body["status"] == "requires_approval"
    assert body["pending"] == [{"id": "c_n", "name": "t.note", "arguments": '{"text": "pay"}'}]
    assert probe.thread_names == []  # never called on the model's word
    run_id = body["run_id"]

    url = f"/threads/{thread_id}/runs/{run_id}/approvals"
    status, error = await error_of(await client.post(url, json={"decisions": []}))
    assert status == 422
    assert error["fields"] == {"decisions": "every pending call needs a decision; missing: c_n"}
    response = await client.post(url, json={"decisions": [{"call_id": "c_n", "approve": True}]})
    assert response.status_code == 200
    body = await response.get_json()
    assert body["status"] == "completed"
    assert body["responses"] == ["Paid."]
    assert len(probe.thread_names) == 1
    status, error = await error_of(
        await client.post(url, json={"decisions": [{"call_id": "c_n", "approve": True}]})
    )
    assert (status, error["code"]) == (409, "conflict")
    # The stopped run says which run continued it.
    stopped = await (await client.get(f"/threads/{thread_id}/runs/{run_id}")).get_json()
    assert stopped["status"] == "requires_approval"
    assert stopped["resumed_by"] == body["run_id"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"decisions": []}, "decisions"),
        ({"decisions": [{"call_id": "c_other", "approve": True}]}, "c_other"),
        ({"decisions": [{"call_id": "c_n", "approve": "yes"}]}, "decisions"),
        ({}, "decisions"),
        ({"decisions": [{"call_id": "c_n", "approve": True}], "extra": 1}, "extra"),
    ],
)
async def test_bad_decisions_are_422_naming_the_field_and_change_nothing(
    client, model, body, field
):
    thread_id = await start(client)
    model.script(call_tools(call_tool("t.note", {"text": "x"}, call_id="c_n")))
    run_id = (
        await (await client.post("/chat", json={"thread_id": thread_id, "message": "x"})).get_json()
    )["run_id"]
    response = await client.post(f"/threads/{thread_id}/runs/{run_id}/approvals", json=body)
    status, error = await error_of(response)
    assert status == 422
    assert field in error["fields"]
    run = await (await client.get(f"/threads/{thread_id}/runs/{run_id}")).get_json()
    assert run["status"] == "requires_approval"


async def test_a_denial_over_sse_streams_the_continuing_run(client, model, probe):
    thread_id = await start(client)
    model.script(call_tools(call_tool("t.note", {"text": "x"}, call_id="c_n")), reply("Not done."))
    run_id = (
        await (await client.post("/chat", json={"thread_id": thread_id, "message": "x"})).get_json()
    )["run_id"]
    response = await client.post(
        f"/threads/{thread_id}/runs/{run_id}/approvals",
        json={"decisions": [{"call_id": "c_n", "approve": False, "reason": "no"}]},
        headers=SSE,
    )
    frames = [payload for _, payload in sse_frames(await response.get_data())]
    assert frames[0]["type"] == "run.started"
    assert frames[0]["resumes"] == run_id
    assert frames[-1]["type"] == "run.completed"
    assert frames[-1]["tool_calls"][0]["status"] == "denied"
    assert probe.thread_names == []


async def test_a_background_run_is_cancelled_and_its_status_says_so(client, model, probe):
    thread_id = await start(client)
    model.script(call_tools(call_tool("t.wait", {"seconds": 30})))
    response = await client.post(
        "/chat", json={"thread_id": thread_id, "message": "wait", "background": True}
    )
    assert response.status_code == 202
    body = await response.get_json()
    assert body["status"] == "in_progress"
    run_id = body["run_id"]
    with anyio.fail_after(5):
        await probe.started.wait()
    run_url = f"/threads/{thread_id}/runs/{run_id}"
    assert (await (await client.get(run_url)).get_json())["status"] == "in_progress"
    response = await client.post(f"{run_url}/cancel")
    assert response.status_code == 202
    assert await response.get_json() == {"run_id": run_id, "status": "cancelling"}
    with anyio.fail_after(5):
        while (await (await client.get(run_url)).get_json())["status"] == "in_progress":  # noqa: ASYNC110 -- polling the API, as a client does
            await anyio.sleep(0.02)
    run = await (await client.get(run_url)).get_json()
    assert run["status"] == "cancelled"
    assert probe.cancelled
    status, error = await error_of(await client.post(f"{run_url}/cancel"))
    assert (status, error["code"]) == (409, "conflict")
    # The whole run replays, to its run.cancelled.
    frames = [p for _, p in sse_frames(await (await client.get(f"{run_url}/events")).get_data())]
    assert frames[-1]["type"] == "run.cancelled"


async def test_a_background_run_is_polled_to_completion(client, model):
    thread_id = await start(client)
    model.script(call_tools(call_tool("t.wait", {"seconds": 0})), reply("all done"))
    response = await client.post(
        "/chat", json={"thread_id": thread_id, "message": "go", "background": True}
    )
    run_id = (await response.get_json())["run_id"]
    run_url = f"/threads/{thread_id}/runs/{run_id}"
    with anyio.fail_after(5):
        while (run := await (await client.get(run_url)).get_json())["status"] == "in_progress":  # noqa: ASYNC110 -- polling the API
            await anyio.sleep(0.02)
    assert run["status"] == "completed"
    assert run["result"]["responses"] == ["all done"]


async def test_events_resume_after_the_last_event_id(client, model):
    thread_id = await start(client)
    model.script(reply("one two three four five six"))
    response = await client.post(
        "/chat", json={"thread_id": thread_id, "message": "count"}, headers=SSE
    )
    original = [payload for _, payload in sse_frames(await response.get_data())]
    run_id = original[0]["run_id"]
    url = f"/threads/{thread_id}/runs/{run_id}/events"
    resumed = sse_frames(await (await client.get(url, headers={"Last-Event-ID": "2"})).get_data())
    assert [p["seq"] for _, p in resumed] == [p["seq"] for p in original[2:]]
    assert [p["type"] for _, p in resumed] == [p["type"] for p in original[2:]]
    by_query = sse_frames(await (await client.get(url, query_string={"after": "4"})).get_data())
    assert [p["seq"] for _, p in by_query] == [p["seq"] for p in original[4:]]


@pytest.mark.parametrize(
    ("path", "method", "status"),
    [
        ("/threads/{t}/runs/run_missing", "get", 404),
        ("/threads/{t}/runs/run_missing/cancel", "post", 404),
        ("/threads/{t}/runs/run_missing/events", "get", 404),
        ("/threads/{t}/runs/nope/cancel", "post", 422),
        ("/threads/{t}/runs/{r}/events?after=-1", "get", 422),
        ("/threads/{t}/runs/{r}/events?after=x", "get", 422),
        ("/threads/{o}/runs/{r}", "get", 404),
        ("/threads/{o}/runs/{r}/cancel", "post", 404),
        ("/threads/{t}/runs/{r}/cancel", "post", 409),
    ],
)
async def test_bad_run_routes_are_clear_errors(client, model, path, method, status):
    thread_id, other = await start(client), await start(client)
    model.script(reply("done"))
    run_id = (
        await (await client.post("/chat", json={"thread_id": thread_id, "message": "x"})).get_json()
    )["run_id"]
    url = path.format(t=thread_id, o=other, r=run_id)
    response = await getattr(client, method)(url)
    assert response.status_code == status
    body = await response.get_json()
    assert body["error"]["correlation_id"] == response.headers["X-Correlation-ID"]


async def receive(socket) -> dict:
    with anyio.fail_after(5):
        return json.loads(await socket.receive())


async def test_ws_frames_cancel_and_refusals_echo_the_frame_id_without_a_run_id(
    client, model, probe
):
    thread_id = await start(client)
    model.script(call_tools(call_tool("t.wait", {"seconds": 30})))
    async with client.websocket("/stream") as socket:
        await socket.send(json.dumps({"thread_id": thread_id, "message": "wait", "id": "f1"}))
        started = await receive(socket)
        assert started["type"] == "run.started"
        run_id = started["run_id"]
        with anyio.fail_after(5):
            await probe.started.wait()
        await socket.send(json.dumps({"thread_id": thread_id, "message": "again", "id": "f2"}))
        refused = await receive(socket)
        while refused["type"] != "error":  # tool_call.started may come first
            refused = await receive(socket)
        assert refused["frame_id"] == "f2"
        assert "run_id" not in refused
        assert refused["code"] == "conflict"
        await socket.send(json.dumps({"type": "cancel", "run_id": run_id, "id": "f3"}))
        events = [await receive(socket) for _ in range(2)]
        types = {event["type"] for event in events}
        assert types == {"cancel.accepted", "run.cancelled"}
        [ack] = [event for event in events if event["type"] == "cancel.accepted"]
        assert ack["frame_id"] == "f3"
        await socket.send(json.dumps({"type": "dance", "id": "f4"}))
        unknown = await receive(socket)
        assert (unknown["code"], unknown["frame_id"]) == ("invalid_input", "f4")
        assert "type" in unknown["fields"]


async def test_ws_resume_replays_a_finished_run(client, model):
    thread_id = await start(client)
    model.script(reply("a b c d"))
    async with client.websocket("/stream") as socket:
        await socket.send(json.dumps({"thread_id": thread_id, "message": "go"}))
        first = [await receive(socket)]
        while first[-1]["type"] != "run.completed":
            first.append(await receive(socket))
        run_id = first[0]["run_id"]
        await socket.send(json.dumps({"type": "resume", "run_id": run_id, "after": 1}))
        again = [await receive(socket)]
        while again[-1]["type"] != "run.completed":
            again.append(await receive(socket))
    assert [e["seq"] for e in again] == [e["seq"] for e in first[1:]]


async def test_ws_approvals_frame_streams_the_continuation(client, model, probe):
    thread_id = await start(client)
    model.script(call_tools(call_tool("t.note", {"text": "ok"}, call_id="c_n")), reply("noted"))
    async with client.websocket("/stream") as socket:
        await socket.send(json.dumps({"thread_id": thread_id, "message": "note"}))
        events = [await receive(socket)]
        while events[-1]["type"] != "run.requires_approval":
            events.append(await receive(socket))
        assert events[-2]["type"] == "tool_call.approval_required"
        run_id = events[0]["run_id"]
        decisions = [{"call_id": "c_n", "approve": True}]
        await socket.send(
            json.dumps({"type": "approvals", "run_id": run_id, "decisions": decisions})
        )
        continued = [await receive(socket)]
        while continued[-1]["type"] != "run.completed":
            continued.append(await receive(socket))
    assert continued[0]["resumes"] == run_id
    assert continued[-1]["responses"] == ["noted"]
    assert len(probe.thread_names) == 1


async def test_a_background_run_still_going_at_shutdown_is_recorded_as_interrupted(
    services, model, probe
):
    from assistant_service.entrypoints.http.app import create_app  # noqa: PLC0415

    settings = attrs.evolve(services.settings, graceful_timeout=0.2)
    app = create_app(attrs.evolve(services, settings=settings))
    model.script(call_tools(call_tool("t.wait", {"seconds": 30})))
    async with app.test_app() as test_app:
        client = test_app.test_client()
        thread_id = await start(client)
        response = await client.post(
            "/chat", json={"thread_id": thread_id, "message": "wait", "background": True}
        )
        run_id = (await response.get_json())["run_id"]
        with anyio.fail_after(5):
            await probe.started.wait()
    # The app stopped: past the graceful timeout the run was cancelled, and said so.
    assert probe.cancelled
    record = await services.assistant.run(thread_id, run_id)
    assert record.status.value == "failed"
    assert record.error_code == "interrupted"
