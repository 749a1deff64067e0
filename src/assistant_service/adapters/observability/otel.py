"""OpenTelemetry traces: spans for runs, model steps and tool calls, GenAI conventions.

Needs the ``otel`` extra; every function here imports the SDK when called, so
importing this module costs nothing without it. Configured only by the standard
``OTEL_*`` variables (see :func:`tracer_provider_from_environment`).

Spans follow the OpenTelemetry GenAI semantic conventions: a run is
``invoke_agent {assistant}``, each model step ``chat {model}`` (a client span,
current while the model's code runs, so the ``traceparent`` sent upstream names
it), each tool call ``execute_tool {tool}``, under the HTTP request's or
WebSocket session's span when there is one.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, MutableMapping
from typing import TYPE_CHECKING, Any

import attrs

from assistant_service.adapters.correlation import current_correlation_id
from assistant_service.domain.errors import AssistantServiceError
from assistant_service.domain.models import RunStatus, Usage
from assistant_service.domain.tools import OutcomeStatus, ToolCall, ToolOutcome
from assistant_service.ports.observer import (
    HttpRequest,
    RunInfo,
    RunObservation,
    StepObservation,
    ToolObservation,
    UpstreamCall,
)

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Span, Tracer

INSTRUMENTATION = "assistant_service"
DEFAULT_SERVICE_NAME = "assistant-service"
CORRELATION_ATTRIBUTE = "assistant_service.correlation_id"
# Setting any of these turns tracing on; without them the extra stays idle.
_TURNS_ON = (
    "OTEL_TRACES_EXPORTER",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
)


def tracer_provider_from_environment(
    environ: Mapping[str, str] | None = None,
) -> TracerProvider | None:
    """A tracer provider exporting as ``OTEL_*`` says, or ``None`` when tracing is off.

    Off when ``OTEL_SDK_DISABLED=true``, when ``OTEL_TRACES_EXPORTER`` is ``none``,
    and when neither it nor an OTLP endpoint is set (installing the extra alone
    exports nothing). ``OTEL_TRACES_EXPORTER`` is a comma-separated list of
    ``otlp`` (OTLP over HTTP; ``OTEL_EXPORTER_OTLP_*`` apply) and ``console``;
    ``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_TRACES_SAMPLER``
    and ``OTEL_BSP_*`` are the SDK's own. Raises ``ImportError`` without the
    extra and ``ValueError`` for an exporter it does not know.
    """
    environ = os.environ if environ is None else environ
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    if not any(environ.get(name, "").strip() for name in _TURNS_ON):
        return None
    names = [
        name.strip().lower()
        for name in environ.get("OTEL_TRACES_EXPORTER", "otlp").split(",")
        if name.strip()
    ]
    names = [name for name in names if name != "none"]
    if not names:
        return None
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource  # noqa: PLC0415
    from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415
    from opentelemetry.sdk.trace.export import (  # noqa: PLC0415
        BatchSpanProcessor,
        ConsoleSpanExporter,
        SimpleSpanProcessor,
    )

    defaults = {} if environ.get("OTEL_SERVICE_NAME") else {SERVICE_NAME: DEFAULT_SERVICE_NAME}
    provider = TracerProvider(resource=Resource.create(defaults))
    for name in names:
        if name == "console":
            # One JSON object per span on stdout, as it ends: for a look, not for production.
            provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
        elif name == "otlp":
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # noqa: PLC0415
                OTLPSpanExporter,
            )

            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        else:
            raise ValueError(
                f"OTEL_TRACES_EXPORTER: unknown exporter {name!r} (otlp, console, none)"
            )
    return provider


def provider_name(backend: str) -> str:
    """``gen_ai.provider.name`` for a backend: ``openai`` for its protocols."""
    return "offline" if backend == "offline" else "openai"


@attrs.define
class OpenTelemetryObserver:
    """Spans for runs, steps and tool calls on ``tracer_provider``'s tracer.

    Upstream calls and requests have spans of their own elsewhere (the model
    step's, the ASGI instrumentation's): their hooks do nothing here.
    """

    _tracer: Tracer = attrs.field(alias="tracer")
    provider: str = "openai"

    @classmethod
    def create(cls, tracer_provider: Any, backend: str) -> OpenTelemetryObserver:
        from opentelemetry import trace  # noqa: PLC0415 -- the extra is optional

        tracer = trace.get_tracer(INSTRUMENTATION, tracer_provider=tracer_provider)
        return cls(tracer=tracer, provider=provider_name(backend))

    def run_started(self, run: RunInfo) -> RunObservation:
        from opentelemetry import trace  # noqa: PLC0415

        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.provider.name": self.provider,
            "gen_ai.agent.id": run.assistant_id,
            "gen_ai.agent.name": run.assistant_id,
            "gen_ai.request.model": run.model,
            "gen_ai.conversation.id": run.conversation_id,
            "assistant_service.run_id": run.run_id,
        }
        correlation_id = current_correlation_id()
        if correlation_id is not None:
            attributes[CORRELATION_ATTRIBUTE] = correlation_id
        span = self._tracer.start_span(
            f"invoke_agent {run.assistant_id}",
            kind=trace.SpanKind.INTERNAL,
            attributes=attributes,
        )
        return _Run(self._tracer, span, run, self.provider, trace.set_span_in_context(span))

    def upstream_call(self, call: UpstreamCall) -> None:
        pass

    def http_request(self, request: HttpRequest) -> None:
        pass

    def websocket_opened(self) -> None:
        pass

    def websocket_closed(self) -> None:
        pass

    def run_slots(self, in_use: int, limit: int) -> None:
        pass

    def refused(self, code: str) -> None:
        pass  # the request's span has its status; the error code is in the log

    def breaker_changed(self, upstream: str, state: str) -> None:
        pass


def _error(span: Span, error: AssistantServiceError) -> None:
    from opentelemetry.trace import Status, StatusCode  # noqa: PLC0415

    span.set_attribute("error.type", error.code)
    span.set_status(Status(StatusCode.ERROR, error.message))


def _usage(span: Span, usage: Usage) -> None:
    span.set_attribute("gen_ai.usage.input_tokens", usage.input_tokens)
    span.set_attribute("gen_ai.usage.output_tokens", usage.output_tokens)


@attrs.frozen
class _Active:
    span: Span

    def active(self) -> AbstractContextManager[object]:
        from opentelemetry import trace  # noqa: PLC0415

        # Status and exceptions are reported by ended(), from our errors.
        return trace.use_span(
            self.span, end_on_exit=False, record_exception=False, set_status_on_exception=False
        )


@attrs.frozen
class _Step(_Active):
    def ended(self, usage: Usage, error: AssistantServiceError | None) -> None:
        _usage(self.span, usage)
        if error is not None:
            _error(self.span, error)
        self.span.end()


@attrs.frozen
class _Tool(_Active):
    def ended(self, outcome: ToolOutcome) -> None:
        from opentelemetry.trace import Status, StatusCode  # noqa: PLC0415

        self.span.set_attribute("assistant_service.tool.status", outcome.status.value)
        if outcome.status is not OutcomeStatus.OK:
            self.span.set_attribute("error.type", outcome.status.value)
            self.span.set_status(Status(StatusCode.ERROR, outcome.status.value))
        self.span.end()


@attrs.frozen
class _Run:
    tracer: Tracer
    span: Span
    run: RunInfo
    provider: str
    context: Any

    def first_text(self, seconds: float) -> None:
        self.span.add_event("gen_ai.first_text", {"seconds": seconds})

    def step_started(self, index: int) -> StepObservation:
        from opentelemetry import trace  # noqa: PLC0415

        span = self.tracer.start_span(
            f"chat {self.run.model}",
            context=self.context,
            kind=trace.SpanKind.CLIENT,
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": self.provider,
                "gen_ai.request.model": self.run.model,
                "gen_ai.conversation.id": self.run.conversation_id,
                "assistant_service.step": index,
            },
        )
        return _Step(span)

    def tool_call_started(self, call: ToolCall) -> ToolObservation:
        from opentelemetry import trace  # noqa: PLC0415

        span = self.tracer.start_span(
            f"execute_tool {call.name}",
            context=self.context,
            kind=trace.SpanKind.INTERNAL,
            attributes={
                "gen_ai.operation.name": "execute_tool",
                "gen_ai.tool.name": call.name,
                "gen_ai.tool.call.id": call.id,
                "gen_ai.tool.type": "function",
            },
        )
        return _Tool(span)

    def ended(
        self, status: str, usage: Usage, seconds: float, error: AssistantServiceError | None
    ) -> None:
        from opentelemetry.trace import Status, StatusCode  # noqa: PLC0415

        _usage(self.span, usage)
        self.span.set_attribute("assistant_service.run.status", status)
        self.span.set_attribute("assistant_service.run.seconds", seconds)
        if error is not None:
            _error(self.span, error)
        elif status != RunStatus.COMPLETED.value:
            self.span.set_status(Status(StatusCode.ERROR, status))
        self.span.end()


# -- the HTTP edge -------------------------------------------------------------------

SpanDetails = Callable[[MutableMapping[str, Any]], tuple[str, dict[str, Any]]]


def asgi_middleware(app: Any, tracer_provider: Any, span_details: SpanDetails) -> Any:
    """``app`` inside the ASGI instrumentation: one server span per request or socket.

    ``span_details(scope)`` names the span (by route template, never the path).
    The per-message send/receive spans are left out: a streamed run would make
    one per text delta.
    """
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware  # noqa: PLC0415

    return OpenTelemetryMiddleware(
        app,
        tracer_provider=tracer_provider,
        default_span_details=span_details,
        exclude_spans=["receive", "send"],
    )


def annotate_request_span(correlation_id: str) -> None:
    """Put the correlation id on the current (request's) span."""
    from opentelemetry import trace  # noqa: PLC0415

    trace.get_current_span().set_attribute(CORRELATION_ATTRIBUTE, correlation_id)


def current_span_ids() -> tuple[str, str, bool] | None:
    """The current span's trace id and span id (hex) and its sampled flag, if one is valid."""
    from opentelemetry import trace  # noqa: PLC0415

    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return (
        trace.format_trace_id(context.trace_id),
        trace.format_span_id(context.span_id),
        context.trace_flags.sampled,
    )
