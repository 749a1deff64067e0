"""``/stream`` in-process: events, several runs per socket, bad frames, disconnects, reaping."""

from __future__ import annotations

import asyncio
import json

import anyio
import pytest
from http_support import start

from assistant_service.adapters.llm.scripted import call_tool, call_tools, fail, reply
from assistant_service.domain.errors import UpstreamError
from assistant_service.entrypoints.http.app import edge_state

pytestmark = pytest.mark.anyio


async def receive(socket) -> dict:
    with anyio.fail_after(5):
        return json.loads(await socket.receive())


async def run_events(socket) -> list[dict]:
    events = [await receive(socket)]
    while events[-1]["type"] not in {"run.completed", "error"}:
        events.append(await receive(socket))
    return events


async def test_a_frame_streams_the_run_events(client, model):
    thread_id = await start(client)
    model.script(call_tools(call_tool("t.note", {"text": "hi"})), reply("Done here."))
    async with client.websocket("/stream", headers={"X-Correlation-ID": "ws-1"}) as socket:
        await socket.send(json.dumps({"thread_id": thread_id, "message": "go"}))
        events = await run_events(socket)
    types = [event["type"] for event in events]
    assert types == [
        "run.started",
        "tool_call.started",
        "tool_call.completed",
        "message.delta",
        "message.completed",
        "run.completed",
    ]
    assert {event["correlation_id"] for event in events} == {"ws-1"}
    assert events[0]["thread_id"] == thread_id
    assert events[2]["name"] == "t.note"
    assert events[2]["status"] == "ok"
    assert events[-1]["responses"] == ["Done here."]


async def test_several_runs_share_one_socket(client, model):
    first, second = await start(client), await start(client)
    model.script(reply("one"), reply("two"))
    async with client.websocket("/stream") as socket:
        await socket.send(json.dumps({"thread_id": first, "message": "a"}))
        assert (await run_events(socket))[-1]["responses"] == ["one"]
        await socket.send(json.dumps({"thread_id": second, "message": "b"}))
        assert (await run_events(socket))[-1]["responses"] == ["two"]


async def test_a_failed_run_is_an_error_event_and_the_socket_goes_on(client, model):
    thread_id = await start(client)
    model.script(fail(UpstreamError("model down")), reply("back"))
    async with client.websocket("/stream") as socket:
        await socket.send(json.dumps({"thread_id": thread_id, "message": "a"}))
        error = (await run_events(socket))[-1]
        assert error["type"] == "error"
        assert error["code"] == "upstream_error"
        assert error["message"] == "model down"
        assert error["correlation_id"]
        await socket.send(json.dumps({"thread_id": thread_id, "message": "b"}))
        assert (await run_events(socket))[-1]["responses"] == ["back"]


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (b"\x00\x01binary", "malformed_request"),
        ("not json", "malformed_request"),
        ("[1, 2]", "malformed_request"),
        ('{"message": "hi"}', "invalid_input"),
        ('{"thread_id": 5, "message": "hi"}', "invalid_input"),
        ('{"thread_id": "conv_none", "message": "hi"}', "not_found"),
        ('{"thread_id": "../etc", "message": "hi"}', "invalid_input"),
        ('{"thread_id": "a", "message": "' + "x" * 3_000 + '"}', "payload_too_large"),
    ],
)
async def test_a_bad_frame_gets_an_error_event_and_the_socket_stays_usable(
    client, model, frame, code
):
    thread_id = await start(client)
    model.script(reply("still here"))
    async with client.websocket("/stream") as socket:
        await socket.send(frame)
        error = await receive(socket)
        assert error["type"] == "error"
        assert error["code"] == code
        await socket.send(json.dumps({"thread_id": thread_id, "message": "ok?"}))
        assert (await run_events(socket))[-1]["responses"] == ["still here"]


async def test_a_message_too_long_for_the_assistant_names_the_field(client):
    thread_id = await start(client)
    async with client.websocket("/stream") as socket:
        await socket.send(json.dumps({"thread_id": thread_id, "message": "y" * 600}))
        error = await receive(socket)
    assert error["code"] == "invalid_input"
    assert "at most 500" in error["fields"]["message"]


async def test_a_frame_during_a_run_is_refused_and_the_run_goes_on(client, model, probe):
    thread_id = await start(client)
    model.script(call_tools(call_tool("t.wait", {"seconds": 10})), reply("finished"))
    async with client.websocket("/stream") as socket:
        await socket.send(json.dumps({"thread_id": thread_id, "message": "a"}))
        assert (await receive(socket))["type"] == "run.started"
        assert (await receive(socket))["type"] == "tool_call.started"
        await probe.started.wait()
        await socket.send(json.dumps({"thread_id": thread_id, "message": "b"}))
        events = [await receive(socket)]
        assert events[0]["code"] == "conflict"  # answered while the run still waits
        probe.release.set()
        while events[-1]["type"] != "run.completed":
            events.append(await receive(socket))
    [conflict] = [event for event in events if event["type"] == "error"]
    assert conflict["code"] == "conflict"
    assert events[-1]["responses"] == ["finished"]


async def test_a_client_that_disconnects_mid_run_cancels_the_run_and_its_tools(
    app, client, model, probe
):
    thread_id = await start(client)
    model.script(call_tools(call_tool("t.wait", {"seconds": 30})), reply("never"))
    tasks_before = len(asyncio.all_tasks())
    async with client.websocket("/stream") as socket:
        await socket.send(json.dumps({"thread_id": thread_id, "message": "a"}))
        with anyio.fail_after(5):
            await probe.started.wait()
        assert len(asyncio.all_tasks()) > tasks_before
    # Leaving the block disconnected the client: the run's tool was cancelled, not left running.
    assert len(asyncio.all_tasks()) == tasks_before  # no task of the socket or its run leaked
    assert probe.cancelled
    assert not probe.finished
    assert edge_state(app).slots.active == 0
    model.script(reply("free again"))
    response = await client.post("/chat", json={"thread_id": thread_id, "message": "b"})
    assert response.status_code == 200  # the conversation is no longer busy


async def test_an_unexpected_error_in_a_run_is_an_internal_error_event(client, model):
    thread_id = await start(client)
    model.script(fail(RuntimeError("adapter bug")), reply("recovered"))  # type: ignore[arg-type]
    async with client.websocket("/stream") as socket:
        await socket.send(json.dumps({"thread_id": thread_id, "message": "a"}))
        error = (await run_events(socket))[-1]
        assert error["code"] == "internal_error"
        assert "adapter bug" not in error["message"]
        await socket.send(json.dumps({"thread_id": thread_id, "message": "b"}))
        assert (await run_events(socket))[-1]["responses"] == ["recovered"]
