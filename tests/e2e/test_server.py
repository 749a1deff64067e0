"""The service over real sockets: HTTP, SSE and WebSocket clients against Hypercorn."""

from __future__ import annotations

import asyncio
import json

import anyio
import pytest
import websockets
from websockets.asyncio.client import connect

from assistant_service.adapters.llm.scripted import call_tool, call_tools, reply
from assistant_service.entrypoints.http.app import edge_state

pytestmark = pytest.mark.anyio


async def start(http) -> str:
    response = await http.get("/start")
    assert response.status_code == 200
    return response.json()["thread_id"]


async def receive(socket) -> dict:
    with anyio.fail_after(5):
        return json.loads(await socket.recv())


async def until_done(socket) -> list[dict]:
    events = [await receive(socket)]
    while events[-1]["type"] not in {"run.completed", "error"}:
        events.append(await receive(socket))
    return events


async def test_http_sse_and_websocket_over_real_sockets(server, http, model):
    thread_id = await start(http)
    response = await http.post(
        "/chat", json={"thread_id": thread_id, "message": "hi"}, headers={"X-Correlation-ID": "e1"}
    )
    assert response.status_code == 200
    assert response.headers["x-correlation-id"] == "e1"
    assert "offline model" in response.json()["responses"][0]

    model.script(reply("streamed over sse", delay=0.01))
    async with http.stream(
        "POST",
        "/chat",
        json={"thread_id": thread_id, "message": "again"},
        headers={"Accept": "text/event-stream"},
    ) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        body = (await stream.aread()).decode()
    assert body.count("event: message.delta") == 2
    assert "event: run.completed" in body

    model.script(reply("over a websocket"))
    async with connect(server.ws_url, additional_headers={"X-Correlation-ID": "ws-e2e"}) as socket:
        assert socket.response.headers["x-correlation-id"] == "ws-e2e"
        await socket.send(json.dumps({"thread_id": thread_id, "message": "ws"}))
        events = await until_done(socket)
    assert events[-1]["responses"] == ["over a websocket"]
    assert {event["correlation_id"] for event in events} == {"ws-e2e"}


async def test_sse_events_go_out_as_they_happen_not_held_for_later_ones(server, http, model):
    # The body sends what the run produced so far in one write: never waiting for more.
    thread_id = await start(http)
    model.script(reply("a b c", deltas=["a ", "b ", "c"], delay=0.2))
    arrived: list[tuple[float, str]] = []
    async with http.stream(
        "POST",
        "/chat",
        json={"thread_id": thread_id, "message": "slowly"},
        headers={"Accept": "text/event-stream"},
    ) as stream:
        began = anyio.current_time()
        arrived.extend(
            [(anyio.current_time() - began, c.decode()) async for c in stream.aiter_raw()]
        )
    first_delta = next(at for at, text in arrived if "event: message.delta" in text)
    completed = next(at for at, text in arrived if "event: run.completed" in text)
    assert completed - first_delta > 0.3, arrived
    body = "".join(text for _, text in arrived)
    assert body.count("event: message.delta") == 3


async def test_a_client_leaving_an_sse_stream_cancels_its_run(server, http, model):
    thread_id = await start(http)
    model.script(reply("a b c d e f", deltas=list("abcdef"), delay=0.5))
    async with http.stream(
        "POST",
        "/chat",
        json={"thread_id": thread_id, "message": "slowly"},
        headers={"Accept": "text/event-stream"},
    ) as stream:
        async for chunk in stream.aiter_raw():
            if b"event: message.delta" in chunk:
                break  # and leave
    # The run stops at once (not after its 3 s): the thread takes a new message.
    model.script(reply("next"))
    with anyio.fail_after(2):
        while True:
            again = await http.post("/chat", json={"thread_id": thread_id, "message": "next"})
            if again.status_code != 409:
                break
            await anyio.sleep(0.05)
    assert again.status_code == 200, again.text
    assert again.json()["responses"] == ["next"]


async def test_oversized_frames_get_an_error_then_the_hard_limit_closes(server, http, settings):
    thread_id = await start(http)
    limit = settings.max_ws_message_bytes
    async with connect(server.ws_url, max_size=None) as socket:
        await socket.send(b"")
        assert (await receive(socket))["code"] == "malformed_request"
        await socket.send(json.dumps({"thread_id": thread_id, "message": "x" * (limit + 10)}))
        assert (await receive(socket))["code"] == "payload_too_large"
        await socket.send(json.dumps({"thread_id": thread_id, "message": "still usable"}))
        assert (await until_done(socket))[-1]["type"] == "run.completed"
        # Past four times the limit Hypercorn drops the frame and closes: 1009, message too big.
        await socket.send("x" * (limit * 4 + 1))
        with anyio.fail_after(5), pytest.raises(websockets.ConnectionClosed) as closed:
            await socket.recv()
    assert closed.value.rcvd.code == 1009


async def test_a_websocket_client_that_vanishes_cancels_its_run(server, http, model, slow_tool):
    thread_id = await start(http)
    model.script(call_tools(call_tool("t.wait", {"seconds": 60})), reply("never"))
    tasks_before = len(asyncio.all_tasks())
    socket = await connect(server.ws_url)
    await socket.send(json.dumps({"thread_id": thread_id, "message": "slow"}))
    with anyio.fail_after(5):
        await slow_tool.started.wait()
    socket.transport.abort()  # no close frame: the peer just disappears
    with anyio.fail_after(5):
        await slow_tool.cancelled.wait()
    await socket.close()
    assert not slow_tool.finished
    with anyio.fail_after(5):
        # Every task of the socket, its run and its tool ends (client side included).
        while edge_state(server.app).slots.active or len(asyncio.all_tasks()) > tasks_before:  # noqa: ASYNC110
            await anyio.sleep(0.01)


async def test_an_sse_client_that_leaves_mid_stream_cancels_its_run(server, http, model, slow_tool):
    thread_id = await start(http)
    model.script(call_tools(call_tool("t.wait", {"seconds": 60})), reply("never"))
    async with http.stream(
        "POST",
        "/chat",
        json={"thread_id": thread_id, "message": "slow"},
        headers={"Accept": "text/event-stream"},
    ) as stream:
        async for line in stream.aiter_lines():
            if line.startswith("event: tool_call.started"):
                break
    with anyio.fail_after(5):
        await slow_tool.cancelled.wait()
    response = await http.post("/chat", json={"thread_id": thread_id, "message": "free?"})
    assert response.status_code == 200


async def test_shutdown_finishes_runs_in_flight_and_closes_idle_sockets(
    server, http, model, slow_tool
):
    thread_id = await start(http)
    model.script(call_tools(call_tool("t.wait", {"seconds": 10})), reply("finished in time"))
    idle = await connect(server.ws_url)
    busy = await connect(server.ws_url)
    await busy.send(json.dumps({"thread_id": thread_id, "message": "slow"}))
    with anyio.fail_after(5):
        await slow_tool.started.wait()
    server.stop.set()
    with anyio.fail_after(5), pytest.raises(websockets.ConnectionClosed) as closed:
        await idle.recv()
    assert closed.value.rcvd.code == 1001
    slow_tool.release.set()  # the idle socket closed while the run was still going
    events = [await receive(busy)]
    while events[-1]["type"] != "run.completed":
        events.append(await receive(busy))
    assert events[-1]["responses"] == ["finished in time"]
    assert slow_tool.finished
    with anyio.fail_after(5), pytest.raises(websockets.ConnectionClosed):
        await busy.recv()
    await idle.close()
    await busy.close()
    with anyio.fail_after(10):
        await server.stopped.wait()


async def test_a_body_over_the_limit_is_413_over_a_real_socket(server, http, settings):
    body = b'{"thread_id": "a", "message": "' + b"x" * settings.max_body_bytes + b'"}'
    response = await http.post("/chat", content=body, headers={"X-Correlation-ID": "big-1"})
    assert response.status_code == 413
    assert response.json()["error"] == {
        "code": "payload_too_large",
        "message": response.json()["error"]["message"],
        "correlation_id": "big-1",
    }
    assert response.headers["x-correlation-id"] == "big-1"
