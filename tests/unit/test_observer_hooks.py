"""The observer port's plumbing: fan-out, the run loop's hooks, trace headers, OTEL_* and logs."""

from __future__ import annotations

import io
import json
import logging
import os
from contextlib import nullcontext
from pathlib import Path

import attrs
import pytest
import structlog
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from assistant_service.adapters.llm.openai._client import upstream_headers
from assistant_service.adapters.llm.scripted import (
    ScriptedModel,
    call_tool,
    call_tools,
    fail,
    reply,
)
from assistant_service.adapters.observability import upstream
from assistant_service.adapters.observability.otel import tracer_provider_from_environment
from assistant_service.application.observing import NO_OBSERVER, combine
from assistant_service.domain.errors import UpstreamError, UpstreamUnavailableError
from assistant_service.entrypoints.bootstrap import bootstrap
from assistant_service.entrypoints.http.observing import trace_of_headers
from assistant_service.entrypoints.logs import configure_logging
from assistant_service.entrypoints.metrics_server import MULTIPROC_DIR, shared_metrics_directory
from assistant_service.entrypoints.settings import LogFormat, Settings, Switch

pytestmark = pytest.mark.anyio


@attrs.define
class Recorder:
    """An observer that writes down what it is told (a fake, satisfying the port structurally)."""

    name: str
    seen: list[tuple[str, ...]] = attrs.field(factory=list)

    def run_started(self, run):
        self.seen.append((self.name, "run", run.assistant_id))
        return self

    def first_text(self, _seconds):
        self.seen.append((self.name, "first_text"))

    def step_started(self, index):
        self.seen.append((self.name, "step", str(index)))
        return _Part(self, "step")

    def tool_call_started(self, call):
        self.seen.append((self.name, "tool", call.name))
        return _Part(self, "tool")

    def ended(self, status, _usage, _seconds, error):
        self.seen.append((self.name, "run.ended", status, error.code if error else ""))

    def upstream_call(self, call):
        self.seen.append((self.name, "upstream", call.operation, call.outcome))

    def http_request(self, request):
        self.seen.append((self.name, "http", request.route))

    def websocket_opened(self):
        self.seen.append((self.name, "ws.opened"))

    def websocket_closed(self):
        self.seen.append((self.name, "ws.closed"))


@attrs.define
class _Part:
    recorder: Recorder
    kind: str

    def active(self):
        return nullcontext()

    def ended(self, *args):
        detail = args[0].status.value if self.kind == "tool" else ("error" if args[1] else "ok")
        self.recorder.seen.append((self.recorder.name, f"{self.kind}.ended", detail))


async def test_the_run_loop_reports_runs_steps_and_tools_to_every_observer():
    first, second = Recorder("a"), Recorder("b")
    model = ScriptedModel().script(
        call_tools(call_tool("demo.add", {"a": 1, "b": 2})), reply("three")
    )
    service = bootstrap(model=model, observer=combine([first, second]))
    conversation = await service.start_conversation()
    await service.chat(conversation, "add")
    expected = [
        ("run", "demo"),
        ("step", "0"),
        ("step.ended", "ok"),
        ("tool", "demo.add"),
        ("tool.ended", "ok"),
        ("step", "1"),
        ("first_text",),
        ("step.ended", "ok"),
        ("run.ended", "completed", ""),
    ]
    assert [entry[1:] for entry in first.seen] == expected
    assert [entry[1:] for entry in second.seen] == expected


async def test_a_failed_step_and_an_abandoned_run_are_reported():
    recorder = Recorder("a")
    model = ScriptedModel().script(fail(UpstreamError("broke")), reply("a b c d e f g h"))
    service = bootstrap(model=model, observer=recorder)
    conversation = await service.start_conversation()
    with pytest.raises(UpstreamError):
        await service.chat(conversation, "hi")
    assert recorder.seen[-2:] == [
        ("a", "step.ended", "error"),
        ("a", "run.ended", "failed", "upstream_error"),
    ]
    recorder.seen.clear()
    events = service.stream(conversation, "again")
    async for _event in events:
        break  # the caller walks away after run.started
    await events.aclose()
    assert recorder.seen[-1] == ("a", "run.ended", "abandoned", "")


def test_combine_of_none_or_one_adds_no_layer():
    recorder = Recorder("a")
    assert combine([]) is NO_OBSERVER
    assert combine([recorder]) is recorder


def test_upstream_calls_reach_subscribers_with_their_outcome():
    recorder = Recorder("a")
    unsubscribe = upstream.subscribe(recorder)
    try:
        with upstream.reported("chat", "chat.completions.create"):
            pass
        with pytest.raises(UpstreamUnavailableError), upstream.reported("chat", "models.list"):
            raise UpstreamUnavailableError("down")
    finally:
        unsubscribe()
    upstream.report("chat", "after", "ok", 0.1)
    assert recorder.seen == [
        ("a", "upstream", "chat.completions.create", "ok"),
        ("a", "upstream", "models.list", "upstream_unavailable"),
    ]


def test_upstream_headers_carry_the_current_span_as_traceparent():
    provider = TracerProvider()
    with provider.get_tracer("t").start_as_current_span("step") as span:
        headers = upstream_headers()
    context = span.get_span_context()
    assert headers["traceparent"].startswith(f"00-{context.trace_id:032x}-{context.span_id:016x}-")
    assert "traceparent" not in upstream_headers()


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        (
            [(b"traceparent", b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")],
            ("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"),
        ),
        (
            [(b"X-Cloud-Trace-Context", b"105445AA7843BC8BF206B12000100000/1;o=1")],
            ("105445aa7843bc8bf206b12000100000", "0000000000000001"),
        ),
        ([(b"traceparent", b"00-" + b"0" * 32 + b"-b7ad6b7169203331-01")], None),
        ([(b"traceparent", b"garbage")], None),
        ([], None),
    ],
    ids=["traceparent", "cloud", "zero trace", "garbage", "none"],
)
def test_trace_ids_come_from_traceparent_or_cloud_trace_context(headers, expected):
    assert trace_of_headers(headers) == expected


@pytest.mark.parametrize(
    "environ",
    [
        {},
        {"OTEL_TRACES_EXPORTER": "none"},
        {"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "console"},
    ],
    ids=["nothing set", "none", "disabled"],
)
def test_tracing_is_off_unless_otel_variables_ask_for_an_exporter(environ):
    assert tracer_provider_from_environment(environ) is None


def test_an_unknown_exporter_is_refused_and_console_is_built():
    with pytest.raises(ValueError, match="zipkin"):
        tracer_provider_from_environment({"OTEL_TRACES_EXPORTER": "zipkin"})
    provider = tracer_provider_from_environment(
        {"OTEL_TRACES_EXPORTER": "console", "OTEL_SERVICE_NAME": "x"}
    )
    assert provider is not None
    provider.shutdown()


def test_log_lines_join_the_current_span_and_carry_cloud_logging_fields():
    buffer = io.StringIO()
    settings = Settings(log_format=LogFormat.JSON, project_id="proj")
    configure_logging(settings, stream=buffer)
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    try:
        with provider.get_tracer("t").start_as_current_span("work") as span:
            structlog.get_logger("t").info("inside")
        with structlog.contextvars.bound_contextvars(
            trace_id="105445aa7843bc8bf206b12000100000", span_id="0000000000000001"
        ):
            logging.getLogger("t").warning("from.headers")
    finally:
        root = logging.getLogger()
        for handler in [h for h in root.handlers if h.get_name() == "assistant_service"]:
            root.removeHandler(handler)
        structlog.reset_defaults()
    inside, from_headers = (json.loads(line) for line in buffer.getvalue().splitlines())
    trace_id = f"{span.get_span_context().trace_id:032x}"
    assert inside["trace_id"] == trace_id
    assert inside["span_id"] == f"{span.get_span_context().span_id:016x}"
    assert inside["logging.googleapis.com/trace"] == f"projects/proj/traces/{trace_id}"
    assert inside["logging.googleapis.com/spanId"] == inside["span_id"]
    assert inside["logging.googleapis.com/trace_sampled"] is True
    assert from_headers["logging.googleapis.com/trace"] == (
        "projects/proj/traces/105445aa7843bc8bf206b12000100000"
    )


def test_workers_get_a_metrics_directory_made_and_removed(monkeypatch):
    monkeypatch.delenv(MULTIPROC_DIR, raising=False)
    with shared_metrics_directory(Settings(), 2) as on:
        made = os.environ[MULTIPROC_DIR]
        assert on
        assert Path(made).is_dir()
    assert MULTIPROC_DIR not in os.environ
    assert not Path(made).exists()
    with shared_metrics_directory(Settings(metrics=Switch.OFF), 2) as on:
        assert not on
    with shared_metrics_directory(Settings(), 1) as on:
        assert not on
