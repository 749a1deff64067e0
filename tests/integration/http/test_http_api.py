"""The HTTP API in-process: start, chat (JSON and SSE), health, and each error status."""

from __future__ import annotations

from functools import partial

import anyio
import attrs
import pytest
from http_support import sse_events, start

from assistant_service.adapters.llm.scripted import call_tool, call_tools, fail, reply
from assistant_service.domain.errors import UpstreamError, UpstreamUnavailableError
from assistant_service.entrypoints.http.app import create_app, edge_state

pytestmark = pytest.mark.anyio


def assert_error(body, status_code, code, correlation_id):
    assert body["error"]["code"] == code, body
    assert body["error"]["correlation_id"] == correlation_id
    assert "Traceback" not in body["error"]["message"]


async def test_start_returns_a_thread_id_and_a_correlation_id(client):
    response = await client.get("/start")
    assert response.status_code == 200
    assert (await response.get_json())["thread_id"].startswith("conv_")
    assert len(response.headers["X-Correlation-ID"]) == 32


async def test_start_with_an_unknown_assistant_is_404(client):
    response = await client.get("/start", query_string={"assistant_id": "nobody"})
    assert response.status_code == 404
    assert_error(await response.get_json(), 404, "not_found", response.headers["X-Correlation-ID"])


async def test_chat_answers_with_texts_and_tool_summaries(client, model):
    thread_id = await start(client)
    model.script(call_tools(call_tool("t.note", {"text": "hi"})), reply("Done."))
    response = await client.post("/chat", json={"thread_id": thread_id, "message": "go"})
    assert response.status_code == 200
    body = await response.get_json()
    assert body["responses"] == ["Done."]
    [summary] = body["tool_calls"]
    assert summary["name"] == "t.note"
    assert summary["status"] == "ok"
    assert summary["duration_ms"] >= 0


async def test_chat_streams_server_sent_events_with_the_correlation_id(client, model):
    thread_id = await start(client)
    model.script(call_tools(call_tool("t.note", {"text": "hi"})), reply("All done now."))
    response = await client.post(
        "/chat",
        json={"thread_id": thread_id, "message": "go"},
        headers={"Accept": "text/event-stream", "X-Correlation-ID": "req-42"},
    )
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/event-stream")
    assert response.headers["X-Correlation-ID"] == "req-42"
    events = sse_events(await response.get_data())
    types = [event["type"] for event in events]
    assert types[0] == "run.started"
    assert types[1:3] == ["tool_call.started", "tool_call.completed"]
    assert "message.delta" in types
    assert types[-2:] == ["message.completed", "run.completed"]
    assert {event["correlation_id"] for event in events} == {"req-42"}
    assert events[-1]["responses"] == ["All done now."]


async def test_a_stream_outlives_response_timeout(app, client, model):
    # Quart cuts any body still streaming after RESPONSE_TIMEOUT, silently.
    app.config["RESPONSE_TIMEOUT"] = 0.2
    thread_id = await start(client)
    model.script(reply("a b c d e f", deltas=list("abcdef"), delay=0.08))
    started = anyio.current_time()
    response = await client.post(
        "/chat",
        json={"thread_id": thread_id, "message": "go"},
        headers={"Accept": "text/event-stream"},
    )
    events = sse_events(await response.get_data())
    assert anyio.current_time() - started > 0.4
    assert [e["text"] for e in events if e["type"] == "message.delta"] == list("abcdef")
    assert events[-1]["type"] == "run.completed"


async def test_a_failed_run_streams_an_error_event(client, model):
    thread_id = await start(client)
    model.script(fail(UpstreamError("the model broke"), after_text="partial"))
    response = await client.post(
        "/chat",
        json={"thread_id": thread_id, "message": "go"},
        headers={"Accept": "text/event-stream"},
    )
    events = sse_events(await response.get_data())
    assert events[-1]["type"] == "error"
    assert events[-1]["code"] == "upstream_error"
    assert events[-1]["correlation_id"] == response.headers["X-Correlation-ID"]


@pytest.mark.parametrize(
    ("step", "status", "code"),
    [
        (fail(UpstreamError("bad gateway")), 502, "upstream_error"),
        (fail(UpstreamUnavailableError("slow down", retry_after=6.5)), 503, "upstream_unavailable"),
    ],
)
async def test_upstream_errors_map_to_502_and_503(client, model, step, status, code):
    thread_id = await start(client)
    model.script(step)
    response = await client.post("/chat", json={"thread_id": thread_id, "message": "go"})
    assert response.status_code == status
    assert_error(await response.get_json(), status, code, response.headers["X-Correlation-ID"])
    if status == 503:
        assert response.headers["Retry-After"] == "7"


async def test_too_many_tool_rounds_is_a_502_run_limit_exceeded(client, model):
    thread_id = await start(client)
    step = call_tools(call_tool("t.note", {"text": "again"}))
    model.script(step, step, step)
    response = await client.post("/chat", json={"thread_id": thread_id, "message": "go"})
    assert response.status_code == 502
    assert (await response.get_json())["error"]["code"] == "run_limit_exceeded"


async def test_unknown_thread_is_404_and_a_malformed_id_is_422(client):
    response = await client.post("/chat", json={"thread_id": "conv_nope", "message": "hi"})
    assert response.status_code == 404
    response = await client.post("/chat", json={"thread_id": "not an id!", "message": "hi"})
    assert response.status_code == 422
    fields = (await response.get_json())["error"]["fields"]
    assert list(fields) == ["thread_id"]  # the domain's conversation_id, renamed


async def test_invalid_fields_are_422_naming_each_field(client):
    response = await client.post("/chat", json={"thread_id": 7, "extra": True})
    assert response.status_code == 422
    fields = (await response.get_json())["error"]["fields"]
    assert fields == {
        "thread_id": "expected a string, got a number",
        "message": "required",
        "extra": "unknown field",
    }


async def test_a_message_over_the_profile_limit_is_422(client):
    thread_id = await start(client)
    response = await client.post("/chat", json={"thread_id": thread_id, "message": "x" * 501})
    assert response.status_code == 422
    assert "at most 500" in (await response.get_json())["error"]["fields"]["message"]


async def test_a_body_over_the_limit_is_413(client):
    response = await client.post(
        "/chat", data=b'{"thread_id": "a", "message": "' + b"x" * 5_000 + b'"}'
    )
    assert response.status_code == 413
    assert (await response.get_json())["error"]["code"] == "payload_too_large"


async def test_a_second_run_on_a_busy_thread_is_409(app, client, model, probe):
    thread_id = await start(client)
    model.script(call_tools(call_tool("t.wait", {"seconds": 10})), reply("ok"))
    async with anyio.create_task_group() as group:
        first: dict = {}

        async def first_chat():
            response = await client.post("/chat", json={"thread_id": thread_id, "message": "a"})
            first["status"] = response.status_code

        group.start_soon(first_chat)
        await probe.started.wait()
        response = await client.post("/chat", json={"thread_id": thread_id, "message": "b"})
        assert response.status_code == 409
        assert (await response.get_json())["error"]["code"] == "conflict"
        probe.release.set()
    assert first["status"] == 200
    assert edge_state(app).slots.active == 0


async def test_past_the_run_limit_the_server_answers_503_with_retry_after(
    app, client, model, probe
):
    edge_state(app).slots.limit = 1
    busy, other = await start(client), await start(client)
    model.script(call_tools(call_tool("t.wait", {"seconds": 10})), reply("ok"))
    async with anyio.create_task_group() as group:
        group.start_soon(partial(client.post, "/chat", json={"thread_id": busy, "message": "a"}))
        await probe.started.wait()
        response = await client.post("/chat", json={"thread_id": other, "message": "b"})
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "1"
        assert (await response.get_json())["error"]["code"] == "overloaded"
        probe.release.set()


async def test_unexpected_errors_are_500_without_a_traceback(client, services, read_logs):
    class Broken:
        async def get(self, _assistant_id):
            raise RuntimeError("secret internals")

    services.assistant._configs = Broken()
    response = await client.get("/start")
    assert response.status_code == 500
    body = await response.get_json()
    assert body["error"]["code"] == "internal_error"
    assert "secret internals" not in str(body)
    [line] = [line for line in read_logs() if line["message"] == "request.unexpected_error"]
    assert "RuntimeError: secret internals" in line["exception"]
    assert line["correlation_id"] == response.headers["X-Correlation-ID"]


async def test_unknown_routes_and_methods_get_json_errors(client):
    response = await client.get("/nowhere")
    assert response.status_code == 404
    assert (await response.get_json())["error"]["code"] == "not_found"
    response = await client.get("/chat")
    assert response.status_code == 405
    assert "POST" in response.headers["Allow"]
    assert (await response.get_json())["error"]["code"] == "method_not_allowed"


async def test_health_and_readiness(app, client):
    assert (await client.get("/healthz")).status_code == 200
    response = await client.get("/readyz")
    assert response.status_code == 200
    assert (await response.get_json())["checks"] == {"config": "ok", "secrets": "ok"}
    edge_state(app).begin_draining()
    response = await client.get("/readyz")
    assert response.status_code == 503
    assert (await response.get_json())["checks"]["server"] == "draining"
    response = await client.post("/chat", json={"thread_id": "conv_x", "message": "hi"})
    assert response.status_code == 503


async def test_readiness_fails_when_a_required_secret_is_missing(services):
    app = create_app(attrs.evolve(services, required_secrets=("openai-api-key",)))
    async with app.test_app():
        response = await app.test_client().get("/readyz")
    assert response.status_code == 503
    assert (await response.get_json())["checks"]["secrets"] == "not_found"


async def test_an_unexpected_error_mid_stream_ends_with_an_internal_error_event(
    client, model, read_logs
):
    thread_id = await start(client)
    # Not an AssistantServiceError: a bug in an adapter, which the run loop does not catch.
    model.script(fail(RuntimeError("adapter bug"), after_text="partial answer"))  # type: ignore[arg-type]
    response = await client.post(
        "/chat",
        json={"thread_id": thread_id, "message": "go"},
        headers={"Accept": "text/event-stream"},
    )
    assert response.status_code == 200  # the status went out with the first event
    events = sse_events(await response.get_data())
    assert events[-1]["type"] == "error"
    assert events[-1]["code"] == "internal_error"
    assert "adapter bug" not in events[-1]["message"]
    [line] = [line for line in read_logs() if line["message"] == "stream.failed"]
    assert "RuntimeError: adapter bug" in line["exception"]
    response = await client.post("/chat", json={"thread_id": thread_id, "message": "again"})
    assert response.status_code == 200  # the conversation was released


async def test_the_app_closes_what_the_composition_opened_when_it_stops(services):
    closed = []

    async def close() -> None:
        closed.append("client")

    app = create_app(attrs.evolve(services, closers=(close,)))
    async with app.test_app():
        assert closed == []
    assert closed == ["client"]
