"""Metrics, spans and logs joined to traces, read after real chats through the app in-process."""

from __future__ import annotations

from typing import Any

import attrs
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode, format_span_id, format_trace_id
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from assistant_service.adapters.config.memory import InMemoryConfigRepository
from assistant_service.adapters.llm.scripted import (
    ScriptedModel,
    ScriptedStep,
    call_tool,
    call_tools,
    fail,
)
from assistant_service.adapters.secrets.memory import InMemorySecretRepository
from assistant_service.adapters.tools import FunctionToolRegistry
from assistant_service.application.service import AssistantService
from assistant_service.domain.errors import UpstreamError
from assistant_service.domain.models import AssistantProfile, Usage
from assistant_service.entrypoints.http.app import create_app
from assistant_service.entrypoints.http.services import Services
from assistant_service.entrypoints.observability import observability_from_settings
from assistant_service.entrypoints.settings import Settings, Switch

pytestmark = pytest.mark.anyio


@pytest.fixture
def metrics_registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def services(
    settings: Settings,
    model: ScriptedModel,
    registry: FunctionToolRegistry,
    profile: AssistantProfile,
    metrics_registry: CollectorRegistry,
    exporter: InMemorySpanExporter,
) -> Services:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    closers: list[Any] = []
    observability = observability_from_settings(
        settings, closers, metrics_registry=metrics_registry, tracer_provider=provider
    )
    configs = InMemoryConfigRepository.of(profile)
    assistant = AssistantService(
        model=model,
        state=model.store,
        configs=configs,
        tools=registry,
        default_assistant_id=profile.id,
        observer=observability.observer,
    )
    return Services(
        assistant=assistant,
        configs=configs,
        secrets=InMemorySecretRepository(values={}),
        settings=settings,
        closers=tuple(closers),
        observability=observability,
    )


async def samples(client) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain")
    text = await response.get_data(as_text=True)
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(found, name: str, **labels: str) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


async def chat(client, thread_id: str, message: str = "hello") -> Any:
    return await client.post("/chat", json={"thread_id": thread_id, "message": message})


async def start(client) -> str:
    return (await (await client.get("/start")).get_json())["thread_id"]


async def test_metrics_move_after_real_chats_and_their_labels_stay_bounded(client, model, settings):
    thread_id = await start(client)
    model.script(
        call_tools(call_tool("t.note", {"text": "hi"})),
        ScriptedStep(text="Done.", usage=Usage(input_tokens=12, output_tokens=5)),
        call_tools(call_tool("made.up", {})),
        ScriptedStep(text="Again.", usage=Usage(input_tokens=3, output_tokens=2)),
    )
    assert (await chat(client, thread_id)).status_code == 200
    assert (await chat(client, thread_id, "again")).status_code == 200
    await client.get(f"/threads/{thread_id}/messages")
    await client.get("/no/such/path/0123456789")

    found = await samples(client)
    runs = "assistant_runs_total"
    assert value(found, runs, assistant="test", backend="offline", status="completed") == 2
    assert value(found, "assistant_tool_calls_total", tool="t.note", status="ok") == 1
    # A name the model made up is not a label: it counts as not allowed.
    assert (
        value(found, "assistant_tool_calls_total", tool="_not_allowed", status="not_allowed") == 1
    )
    assert value(found, "assistant_tokens_total", assistant="test", kind="input") == 15
    assert value(found, "assistant_tokens_total", assistant="test", kind="output") == 7
    assert value(found, "assistant_active_runs") == 0
    # Both runs gave their slot back; the bound is the app's MAX_CONCURRENT_RUNS.
    assert value(found, "assistant_run_slots_in_use") == 0
    assert value(found, "assistant_run_slots_limit") == settings.max_concurrent_runs
    http = "assistant_http_requests_total"
    assert value(found, http, route="/chat", method="POST", status="200") == 2
    assert value(found, http, route="/start", method="GET", status="200") == 1
    assert (
        value(found, http, route="/threads/<thread_id>/messages", method="GET", status="200") == 1
    )
    assert value(found, http, route="unmatched", method="GET", status="404") == 1
    assert (
        value(found, "assistant_run_duration_seconds_count", assistant="test", backend="offline")
        == 2
    )
    assert (
        value(
            found,
            "assistant_run_time_to_first_text_seconds_count",
            assistant="test",
            backend="offline",
        )
        == 2
    )
    labels = {label for _, pairs in found for _, label in pairs}
    assert not [label for label in labels if thread_id in label or "0123456789" in label]
    assert "made.up" not in labels


async def test_a_failed_run_is_counted_and_its_step_span_carries_the_error(client, model, exporter):
    thread_id = await start(client)
    model.script(fail(UpstreamError("the model broke")))
    response = await chat(client, thread_id)
    assert response.status_code == 502

    found = await samples(client)
    assert (
        value(found, "assistant_runs_total", assistant="test", backend="offline", status="failed")
        == 1
    )
    step = one(exporter.get_finished_spans(), "chat scripted")
    assert step.status.status_code is StatusCode.ERROR
    assert step.attributes["error.type"] == "upstream_error"
    run = one(exporter.get_finished_spans(), "invoke_agent test")
    assert run.status.status_code is StatusCode.ERROR
    assert step.parent.span_id == run.context.span_id


def one(spans, name: str) -> ReadableSpan:
    matching = [span for span in spans if span.name == name]
    assert len(matching) == 1, [span.name for span in spans]
    return matching[0]


async def test_spans_nest_request_run_steps_and_tools_with_genai_attributes(
    client, model, exporter
):
    thread_id = await start(client)
    exporter.clear()
    model.script(
        call_tools(call_tool("t.note", {"text": "hi"})),
        ScriptedStep(text="Done.", usage=Usage(input_tokens=12, output_tokens=5)),
    )
    response = await chat(client, thread_id)
    assert response.status_code == 200

    spans = exporter.get_finished_spans()
    request = one(spans, "POST /chat")
    run = one(spans, "invoke_agent test")
    tool = one(spans, "execute_tool t.note")
    steps = [span for span in spans if span.name == "chat scripted"]
    assert request.kind is SpanKind.SERVER
    assert request.attributes["http.route"] == "/chat"
    assert (
        request.attributes["assistant_service.correlation_id"]
        == response.headers["X-Correlation-ID"]
    )
    assert run.parent.span_id == request.context.span_id
    assert run.context.trace_id == request.context.trace_id
    assert [step.parent.span_id for step in steps] == [run.context.span_id] * 2
    assert tool.parent.span_id == run.context.span_id
    assert run.attributes["gen_ai.operation.name"] == "invoke_agent"
    assert run.attributes["gen_ai.agent.id"] == "test"
    assert run.attributes["gen_ai.conversation.id"] == thread_id
    assert run.attributes["gen_ai.usage.input_tokens"] == 12
    assert (
        run.attributes["assistant_service.correlation_id"] == response.headers["X-Correlation-ID"]
    )
    assert steps[0].kind is SpanKind.CLIENT
    assert steps[0].attributes["gen_ai.operation.name"] == "chat"
    assert steps[0].attributes["gen_ai.request.model"] == "scripted"
    assert steps[1].attributes["gen_ai.usage.output_tokens"] == 5
    assert tool.attributes["gen_ai.tool.name"] == "t.note"
    assert tool.attributes["gen_ai.operation.name"] == "execute_tool"
    assert tool.status.status_code is StatusCode.UNSET
    # No span per WebSocket message or per HTTP body chunk.
    assert not [span for span in spans if span.name.endswith((" send", " receive"))]


async def test_a_log_line_carries_the_trace_and_span_ids_of_its_span(
    client, model, exporter, read_logs, settings
):
    thread_id = await start(client)
    model.script(call_tools(call_tool("t.note", {"text": "joined"})), ScriptedStep(text="ok"))
    assert (await chat(client, thread_id)).status_code == 200

    tool = one(exporter.get_finished_spans(), "execute_tool t.note")
    request = one(exporter.get_finished_spans(), "POST /chat")
    lines = read_logs()
    said = next(line for line in lines if line.get("message") == "tool says joined")
    assert said["trace_id"] == format_trace_id(tool.context.trace_id)
    assert said["span_id"] == format_span_id(tool.context.span_id)
    access = next(line for line in lines if line.get("path") == "/chat")
    assert access["span_id"] == format_span_id(request.context.span_id)


async def test_the_websocket_session_is_one_span_and_an_open_socket_is_counted(
    app, client, model, exporter
):
    thread_id = await start(client)
    async with client.websocket("/stream") as socket:
        await socket.send_json({"thread_id": thread_id, "message": "hi"})
        while (await socket.receive_json())["type"] != "run.completed":
            pass
        found = await samples(client)
        assert value(found, "assistant_open_websockets") == 1
    found = await samples(client)
    assert value(found, "assistant_open_websockets") == 0
    assert (
        value(found, "assistant_http_requests_total", route="/stream", method="GET", status="101")
        == 1
    )
    session = one(exporter.get_finished_spans(), "WEBSOCKET /stream")
    run = one(exporter.get_finished_spans(), "invoke_agent test")
    assert run.parent.span_id == session.context.span_id


@pytest.mark.parametrize(
    "changes",
    [{"metrics": Switch.OFF}, {"metrics_port": 9464}],
    ids=["METRICS=off", "METRICS_PORT"],
)
async def test_metrics_are_not_served_on_the_main_port_when_off_or_on_their_own(changes, settings):
    services = Services(
        assistant=AssistantService(
            model=ScriptedModel(),
            state=ScriptedModel().store,
            configs=InMemoryConfigRepository.of(),
            tools=FunctionToolRegistry(),
        ),
        configs=InMemoryConfigRepository.of(),
        secrets=InMemorySecretRepository(values={}),
        settings=attrs.evolve(settings, **changes),
        observability=observability_from_settings(
            attrs.evolve(settings, **changes), [], metrics_registry=CollectorRegistry()
        ),
    )
    app = create_app(services)
    async with app.test_app():
        assert (await app.test_client().get("/metrics")).status_code == 404
