"""Correlation IDs in headers, events and log lines, tools in worker threads included."""

from __future__ import annotations

import json
import logging

import attrs
import pytest
import structlog
from http_support import start

from assistant_service.adapters.llm.scripted import ScriptedModel, call_tool, call_tools, reply
from assistant_service.application.service import AssistantService
from assistant_service.entrypoints.http.app import create_app

pytestmark = pytest.mark.anyio


async def test_a_tool_logging_from_a_worker_thread_carries_the_correlation_id(
    client, model, probe, read_logs
):
    thread_id = await start(client)
    model.script(call_tools(call_tool("t.note", {"text": "from the tool"})), reply("ok"))
    response = await client.post(
        "/chat",
        json={"thread_id": thread_id, "message": "go"},
        headers={"X-Correlation-ID": "trace-me"},
    )
    assert response.status_code == 200
    [thread_name] = probe.thread_names
    assert thread_name != "MainThread"  # sync tools run in anyio's worker threads
    [line] = [line for line in read_logs() if line["message"] == "tool says from the tool"]
    assert line["correlation_id"] == "trace-me"
    assert line["thread_id"] == thread_id
    assert line["severity"] == "INFO"
    assert line["logger"] == "tests.tools"


async def test_one_access_line_per_request(client, read_logs):
    response = await client.get("/healthz", headers={"X-Correlation-ID": "probe-1"})
    [line] = [line for line in read_logs() if line.get("logger") == "assistant_service.access"]
    assert line["message"] == "request"
    assert line["method"] == "GET"
    assert line["path"] == "/healthz"
    assert line["status"] == 200
    assert line["duration_ms"] >= 0
    assert line["correlation_id"] == "probe-1" == response.headers["X-Correlation-ID"]
    assert line["timestamp"].endswith("Z")


async def test_the_websocket_events_and_log_lines_share_the_correlation_id(
    client, model, read_logs
):
    thread_id = await start(client)
    model.script(call_tools(call_tool("t.note", {"text": "ws tool"})), reply("ok"))
    async with client.websocket("/stream", headers={"X-Correlation-ID": "ws-trace"}) as socket:
        await socket.send(json.dumps({"thread_id": thread_id, "message": "go"}))
        events = [json.loads(await socket.receive())]
        while events[-1]["type"] != "run.completed":
            events.append(json.loads(await socket.receive()))
    assert {event["correlation_id"] for event in events} == {"ws-trace"}
    [line] = [line for line in read_logs() if line["message"] == "tool says ws tool"]
    assert line["correlation_id"] == "ws-trace"


@pytest.mark.parametrize("sent", ["x" * 129, "", "caf\u00e9", "tab\there-is-ok-but\x7f-not"])
async def test_an_invalid_correlation_id_is_replaced(client, sent):
    response = await client.get("/healthz", headers={"X-Correlation-ID": sent})
    echoed = response.headers["X-Correlation-ID"]
    assert echoed != sent
    assert len(echoed) == 32


async def test_error_bodies_carry_the_correlation_id(client):
    response = await client.post("/chat", data=b"{", headers={"X-Correlation-ID": "oops-1"})
    assert response.status_code == 400
    assert response.headers["X-Correlation-ID"] == "oops-1"
    assert (await response.get_json())["error"]["correlation_id"] == "oops-1"


async def test_secret_values_are_redacted_from_log_lines(read_logs):
    structlog.get_logger("tests").info("calling", api_key="sk-live-abcdef123456", user="ann")
    logging.getLogger("tests").warning("header was Bearer abc.def-123456 and sk-proj-zzzzzzzz99")
    lines = read_logs()
    assert lines[0]["api_key"] == "[REDACTED]"
    assert lines[0]["user"] == "ann"
    assert "abc.def-123456" not in lines[1]["message"]
    assert "sk-proj-zzzzzzzz99" not in lines[1]["message"]
    assert lines[1]["severity"] == "WARNING"


async def test_upstream_calls_log_with_the_correlation_id(services, read_logs):
    upstream_log = logging.getLogger("tests.upstream")

    @attrs.define
    class LoggingModel(ScriptedModel):
        """A model adapter that logs each call, as the OpenAI adapters do."""

        async def stream_step(self, conversation, profile, step, tools, *, lease=None):
            upstream_log.info("calling the model for %s", conversation.id)
            async for event in super().stream_step(conversation, profile, step, tools, lease=lease):
                yield event

    model = LoggingModel().script(reply("hello"))
    assistant = AssistantService(
        model=model,
        state=model.store,
        configs=services.configs,
        tools=services.assistant._tools,
        default_assistant_id="test",
    )
    app = create_app(attrs.evolve(services, assistant=assistant))
    async with app.test_app():
        client = app.test_client()
        thread_id = await start(client)
        response = await client.post(
            "/chat",
            json={"thread_id": thread_id, "message": "hi"},
            headers={"Accept": "text/event-stream", "X-Correlation-ID": "up-1"},
        )
        await response.get_data()
    [line] = [line for line in read_logs() if line["logger"] == "tests.upstream"]
    assert line["correlation_id"] == "up-1"
    assert line["thread_id"] == thread_id
