"""Prometheus metrics: an observer that counts, and the text format to serve them in.

Needs ``prometheus-client`` (the ``metrics`` or ``server`` extra), imported when
an observer is first made. Labels stay bounded: assistant ids, tool names the
assistant may call (any other name counts as ``_not_allowed``), operation
names, error codes and route templates, never conversation ids or text.

Several processes (``--workers N``): set ``PROMETHEUS_MULTIPROC_DIR`` to an
empty directory before any of them imports the client (the server does it);
each process then writes its figures there and :func:`exposition` adds them up.
"""

from __future__ import annotations

import contextlib
import os
import weakref
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

import attrs

from assistant_service.domain.errors import AssistantServiceError
from assistant_service.domain.models import Usage
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
    from prometheus_client import CollectorRegistry

MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"
_NULL: AbstractContextManager[object] = contextlib.nullcontext()
NOT_ALLOWED_TOOL = "_not_allowed"
# The circuit breaker's states (application.circuit_breaker.BreakerState's values).
BREAKER_STATES = ("closed", "open", "half_open")

# Runs wait on a model (seconds to minutes); tools and upstream calls are shorter.
_RUN_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300)
_FIRST_TEXT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60)
_SHORT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


# Label sets a metric remembers children for (routes, assistants, tools, codes:
# bounded already; this bounds the memory of the shortcut, not the metric).
_MAX_CHILDREN = 4096


class _Labelled:
    """A labelled metric that remembers its children by label values.

    ``prometheus_client``'s ``labels()`` checks, converts and locks on every
    call, several times per chat turn; the child for the same values is the same
    object, so it is looked up once.
    """

    __slots__ = ("_children", "_metric")

    def __init__(self, metric: Any) -> None:
        self._metric = metric
        self._children: dict[tuple[str, ...], Any] = {}

    def labels(self, *values: str) -> Any:
        child = self._children.get(values)
        if child is None:
            child = self._metric.labels(*values)
            if len(self._children) < _MAX_CHILDREN:
                self._children[values] = child
        return child


@attrs.frozen
class _Metrics:
    http_requests: Any
    http_duration: Any
    runs: Any
    run_duration: Any
    first_text: Any
    active_runs: Any
    tool_calls: Any
    tool_duration: Any
    upstream_calls: Any
    upstream_duration: Any
    tokens: Any
    open_websockets: Any
    run_slots_in_use: Any
    run_slots_limit: Any
    refusals: Any
    breaker_state: Any


# By registry object, not id(): a registry that is gone may leave its id to a new one.
_by_registry: weakref.WeakKeyDictionary[CollectorRegistry, _Metrics] = weakref.WeakKeyDictionary()


def _metrics(registry: CollectorRegistry | None) -> _Metrics:
    """The metrics of ``registry`` (the client's default one when ``None``), made once."""
    import prometheus_client as prom  # noqa: PLC0415 -- the extra is optional

    target = prom.REGISTRY if registry is None else registry
    made = _by_registry.get(target)
    if made is not None:
        return made
    http = ("route", "method")
    made = _Metrics(
        http_requests=_Labelled(
            prom.Counter(
                "assistant_http_requests",
                "HTTP requests and WebSocket sessions, by route template, method and status.",
                [*http, "status"],
                registry=target,
            )
        ),
        http_duration=_Labelled(
            prom.Histogram(
                "assistant_http_request_duration_seconds",
                "How long HTTP requests and WebSocket sessions took.",
                http,
                buckets=_SHORT_BUCKETS,
                registry=target,
            )
        ),
        runs=_Labelled(
            prom.Counter(
                "assistant_runs",
                "Runs that ended, by assistant, backend and status.",
                ["assistant", "backend", "status"],
                registry=target,
            )
        ),
        run_duration=_Labelled(
            prom.Histogram(
                "assistant_run_duration_seconds",
                "How long runs took, from start to end.",
                ["assistant", "backend"],
                buckets=_RUN_BUCKETS,
                registry=target,
            )
        ),
        first_text=_Labelled(
            prom.Histogram(
                "assistant_run_time_to_first_text_seconds",
                "From a run's start to its first text delta.",
                ["assistant", "backend"],
                buckets=_FIRST_TEXT_BUCKETS,
                registry=target,
            )
        ),
        active_runs=prom.Gauge(
            "assistant_active_runs",
            "Runs in progress.",
            registry=target,
            multiprocess_mode="livesum",
        ),
        tool_calls=_Labelled(
            prom.Counter(
                "assistant_tool_calls",
                "Tool calls that ended, by tool and status.",
                ["tool", "status"],
                registry=target,
            )
        ),
        tool_duration=_Labelled(
            prom.Histogram(
                "assistant_tool_call_duration_seconds",
                "How long tool calls took.",
                ["tool"],
                buckets=_SHORT_BUCKETS,
                registry=target,
            )
        ),
        upstream_calls=_Labelled(
            prom.Counter(
                "assistant_upstream_calls",
                "Calls to the model server, by backend, operation and outcome.",
                ["backend", "operation", "outcome"],
                registry=target,
            )
        ),
        upstream_duration=_Labelled(
            prom.Histogram(
                "assistant_upstream_call_duration_seconds",
                "How long calls to the model server took (a streamed step: until its headers).",
                ["backend", "operation"],
                buckets=_SHORT_BUCKETS,
                registry=target,
            )
        ),
        tokens=_Labelled(
            prom.Counter(
                "assistant_tokens",
                "Tokens the model used, by assistant and kind (input or output).",
                ["assistant", "kind"],
                registry=target,
            )
        ),
        open_websockets=prom.Gauge(
            "assistant_open_websockets",
            "WebSocket sessions open.",
            registry=target,
            multiprocess_mode="livesum",
        ),
        run_slots_in_use=prom.Gauge(
            "assistant_run_slots_in_use",
            "Run slots taken (MAX_CONCURRENT_RUNS bounds them per process).",
            registry=target,
            multiprocess_mode="livesum",
        ),
        run_slots_limit=prom.Gauge(
            "assistant_run_slots_limit",
            "Run slots there are (MAX_CONCURRENT_RUNS per process, added up).",
            registry=target,
            multiprocess_mode="livesum",
        ),
        refusals=_Labelled(
            prom.Counter(
                "assistant_refusals",
                "Requests and WebSocket frames refused by policy, by error code"
                " (unauthenticated, rate_limited, budget_exhausted).",
                ["code"],
                registry=target,
            )
        ),
        breaker_state=_Labelled(
            prom.Gauge(
                "assistant_upstream_breaker_state",
                "Circuit breakers per upstream and state: 1 for the state each is in "
                "(processes added up).",
                ["upstream", "state"],
                registry=target,
                multiprocess_mode="livesum",
            )
        ),
    )
    _by_registry[target] = made
    return made


@attrs.define
class PrometheusObserver:
    """Counts runs, tool calls, tokens, upstream calls and requests into a registry.

    ``backend`` labels the runs (``responses``, ``chat``...). ``registry`` defaults
    to the client's global one; observers on one registry share its metrics.
    Raises ``ImportError`` without ``prometheus-client``.
    """

    backend: str
    _metrics: _Metrics = attrs.field(alias="metrics")

    @classmethod
    def create(cls, backend: str, registry: CollectorRegistry | None = None) -> PrometheusObserver:
        return cls(backend=backend, metrics=_metrics(registry))

    def run_started(self, run: RunInfo) -> RunObservation:
        self._metrics.active_runs.inc()
        return _Run(self._metrics, run.assistant_id, self.backend)

    def upstream_call(self, call: UpstreamCall) -> None:
        self._metrics.upstream_calls.labels(call.backend, call.operation, call.outcome).inc()
        self._metrics.upstream_duration.labels(call.backend, call.operation).observe(call.seconds)

    def http_request(self, request: HttpRequest) -> None:
        self._metrics.http_requests.labels(request.route, request.method, str(request.status)).inc()
        self._metrics.http_duration.labels(request.route, request.method).observe(request.seconds)

    def websocket_opened(self) -> None:
        self._metrics.open_websockets.inc()

    def websocket_closed(self) -> None:
        self._metrics.open_websockets.dec()

    def run_slots(self, in_use: int, limit: int) -> None:
        self._metrics.run_slots_in_use.set(in_use)
        self._metrics.run_slots_limit.set(limit)

    def refused(self, code: str) -> None:
        self._metrics.refusals.labels(code).inc()

    def breaker_changed(self, upstream: str, state: str) -> None:
        for each in BREAKER_STATES:
            self._metrics.breaker_state.labels(upstream, each).set(1 if each == state else 0)


@attrs.frozen
class _Run:
    metrics: _Metrics
    assistant: str
    backend: str

    def first_text(self, seconds: float) -> None:
        self.metrics.first_text.labels(self.assistant, self.backend).observe(seconds)

    def step_started(self, index: int) -> StepObservation:  # noqa: ARG002 -- the port's
        return _NOTHING

    def tool_call_started(self, call: ToolCall) -> ToolObservation:  # noqa: ARG002 -- the port's
        return _Tool(self.metrics)

    def ended(
        self,
        status: str,
        usage: Usage,
        seconds: float,
        error: AssistantServiceError | None,  # noqa: ARG002 -- the port's
    ) -> None:
        self.metrics.active_runs.dec()
        self.metrics.runs.labels(self.assistant, self.backend, status).inc()
        self.metrics.run_duration.labels(self.assistant, self.backend).observe(seconds)
        if usage.input_tokens:
            self.metrics.tokens.labels(self.assistant, "input").inc(usage.input_tokens)
        if usage.output_tokens:
            self.metrics.tokens.labels(self.assistant, "output").inc(usage.output_tokens)


@attrs.frozen
class _Tool:
    metrics: _Metrics

    def active(self) -> AbstractContextManager[object]:
        return _nothing()

    def ended(self, outcome: ToolOutcome) -> None:
        # A name the assistant may not call can be anything the model made up.
        name = (
            NOT_ALLOWED_TOOL if outcome.status is OutcomeStatus.NOT_ALLOWED else outcome.call.name
        )
        self.metrics.tool_calls.labels(name, outcome.status.value).inc()
        self.metrics.tool_duration.labels(name).observe(outcome.duration)


class _Step:
    __slots__ = ()

    def active(self) -> AbstractContextManager[object]:
        return _nothing()

    def ended(self, usage: Usage, error: AssistantServiceError | None) -> None:
        pass


_NOTHING = _Step()


def _nothing() -> AbstractContextManager[object]:
    return _NULL


CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def exposition(registry: CollectorRegistry | None = None) -> bytes:
    """The metrics in the Prometheus text format.

    With ``PROMETHEUS_MULTIPROC_DIR`` set, the figures of every process writing
    there, added up (``registry`` is then ignored); else ``registry``'s (default:
    the client's global one).
    """
    import prometheus_client as prom  # noqa: PLC0415 -- the extra is optional

    if os.environ.get(MULTIPROC_DIR):
        from prometheus_client import multiprocess  # noqa: PLC0415

        collected = prom.CollectorRegistry()
        multiprocess.MultiProcessCollector(collected)  # type: ignore[no-untyped-call]
        return prom.generate_latest(collected)
    return prom.generate_latest(prom.REGISTRY if registry is None else registry)


def mark_process_dead(pid: int) -> None:
    """Drop a dead worker's live gauges (open sockets, active runs) from the shared figures."""
    if os.environ.get(MULTIPROC_DIR):
        from prometheus_client import multiprocess  # noqa: PLC0415 -- the extra is optional

        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
