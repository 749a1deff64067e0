"""The observer port: what runs, model steps, tool calls, upstream calls and requests report.

The application reports through it; metrics and tracing adapters implement it
(``adapters/observability``), and :data:`~assistant_service.application.observing.NO_OBSERVER`
is the default that does nothing. Every hook is synchronous and must be cheap and
must not raise: it runs on the event loop, inside the run.

A run is observed through the object :meth:`Observer.run_started` returns, so
an adapter can keep per-run state (a span, a start time) without a lookup; a
model step and a tool call likewise. Their ``active()`` context manager is
entered only while the model's or the tool's own code runs (never across a
``yield``), so a tracer can make its span the current one there: upstream calls
made inside carry it (``traceparent``), and log lines written inside join it.

Labels stay bounded: hooks get assistant ids, tool names, operation names and
route templates, never conversation ids, paths or message text, except
:class:`RunInfo`, whose ids a tracer may record as attributes, never as labels.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Protocol

import attrs

from assistant_service.domain.errors import AssistantServiceError
from assistant_service.domain.models import Usage
from assistant_service.domain.tools import ToolCall, ToolOutcome


@attrs.frozen
class RunInfo:
    """What identifies a run: its ids, and the assistant's id and model."""

    run_id: str
    conversation_id: str
    assistant_id: str
    model: str


@attrs.frozen
class UpstreamCall:
    """One call to the model server: ``operation`` is the API's (``responses.create``).

    ``outcome`` is ``ok``, an error code (``upstream_unavailable``...) or ``abandoned``.
    """

    backend: str
    operation: str
    outcome: str
    seconds: float


@attrs.frozen
class HttpRequest:
    """One HTTP request or WebSocket session, by route template (``/stream``, never a path)."""

    route: str
    method: str
    protocol: str  # "http" or "websocket"
    status: int
    seconds: float


class StepObservation(Protocol):
    """One model step of a run (one request to the model and its stream)."""

    def active(self) -> AbstractContextManager[object]:
        """Entered around each stretch of the model's code; never held across a ``yield``."""
        ...

    def ended(self, usage: Usage, error: AssistantServiceError | None) -> None:
        """The step's stream ended: ``error`` when it failed, its usage either way."""
        ...


class ToolObservation(Protocol):
    """One tool call of a run."""

    def active(self) -> AbstractContextManager[object]:
        """Entered around the tool's invocation (in the task that runs it)."""
        ...

    def ended(self, outcome: ToolOutcome) -> None:
        """The call ended; ``outcome`` has its status and duration."""
        ...


class RunObservation(Protocol):
    """One run, from :meth:`Observer.run_started` to :meth:`ended`."""

    def first_text(self, seconds: float) -> None:
        """The run's first text delta came, ``seconds`` after the run started."""
        ...

    def step_started(self, index: int) -> StepObservation:
        """Model step ``index`` (0 for the user's message, then one per tool round) starts."""
        ...

    def tool_call_started(self, call: ToolCall) -> ToolObservation:
        """A tool call the model asked for starts (allowed or not: the outcome tells)."""
        ...

    def ended(
        self, status: str, usage: Usage, seconds: float, error: AssistantServiceError | None
    ) -> None:
        """The run ended, ``seconds`` after it started.

        ``status`` is a :class:`~assistant_service.domain.models.RunStatus` value, or
        ``abandoned`` when the caller stopped reading (or cancelled) before the end;
        ``error`` is the failed run's error.
        """
        ...


class Observer(Protocol):
    """Receives what the service does; see the module docstring for the rules of its hooks."""

    def run_started(self, run: RunInfo) -> RunObservation:
        """A run starts; the returned object observes the rest of it."""
        ...

    def upstream_call(self, call: UpstreamCall) -> None:
        """A call to the model server ended."""
        ...

    def http_request(self, request: HttpRequest) -> None:
        """An HTTP request or a WebSocket session ended."""
        ...

    def websocket_opened(self) -> None:
        """A WebSocket session was accepted."""
        ...

    def websocket_closed(self) -> None:
        """A WebSocket session ended (after :meth:`websocket_opened`)."""
        ...

    def run_slots(self, in_use: int, limit: int) -> None:
        """The process's run slots (its bound on concurrent runs) changed: ``in_use`` of ``limit``."""
        ...

    def refused(self, code: str) -> None:
        """The edge refused a request or a frame by policy: ``code`` is the error's
        (``unauthenticated``, ``rate_limited``, ``budget_exhausted``)."""

    def breaker_changed(self, upstream: str, state: str) -> None:
        """``upstream``'s circuit breaker is now in ``state`` (``closed``, ``open``, ``half_open``)."""
        ...
