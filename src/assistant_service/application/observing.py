"""Observers the application ships: none at all (the default), and several as one."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncGenerator, AsyncIterator, Iterator, Sequence
from contextlib import AbstractContextManager

import attrs

from assistant_service.domain.errors import AssistantServiceError
from assistant_service.domain.events import (
    RunCancelled,
    RunCompleted,
    RunEvent,
    RunFailed,
    RunRequiresApproval,
    TextDelta,
)
from assistant_service.domain.models import Usage
from assistant_service.domain.steps import ModelEvent, ModelUsage
from assistant_service.domain.tools import ToolCall, ToolOutcome
from assistant_service.ports.observer import (
    HttpRequest,
    Observer,
    RunInfo,
    RunObservation,
    StepObservation,
    ToolObservation,
    UpstreamCall,
)

_NOTHING: AbstractContextManager[object] = contextlib.nullcontext()


class _Nothing:
    """Observes nothing: every hook returns at once (one shared instance, no allocation)."""

    # The hooks' arguments are the port's; this observer has no use for them.
    # ruff: noqa: ARG002

    __slots__ = ()

    def run_started(self, run: RunInfo) -> RunObservation:
        return self

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
        pass

    def breaker_changed(self, upstream: str, state: str) -> None:
        pass

    def first_text(self, seconds: float) -> None:
        pass

    def step_started(self, index: int) -> StepObservation:
        return self

    def tool_call_started(self, call: ToolCall) -> ToolObservation:
        return self

    def active(self) -> AbstractContextManager[object]:
        return _NOTHING

    def ended(self, *args: object, **kwargs: object) -> None:
        pass


_NOTHING_AT_ALL = _Nothing()
NO_OBSERVER: Observer = _NOTHING_AT_ALL
"""The default observer: does nothing, costs a method call per hook."""
NO_RUN_OBSERVATION: RunObservation = _NOTHING_AT_ALL
"""What :data:`NO_OBSERVER` observes a run with; the run loop skips its hooks for it."""


def combine(observers: Sequence[Observer]) -> Observer:
    """One observer that reports to each of ``observers``, in order.

    No observer gives :data:`NO_OBSERVER`, one gives itself: neither adds a layer.
    """
    if not observers:
        return NO_OBSERVER
    if len(observers) == 1:
        return observers[0]
    return _Several(tuple(observers))


@contextlib.contextmanager
def _all_active(parts: Sequence[StepObservation | ToolObservation]) -> Iterator[None]:
    with contextlib.ExitStack() as stack:
        for part in parts:
            stack.enter_context(part.active())
        yield


@attrs.frozen
class _SeveralSteps:
    parts: tuple[StepObservation, ...]

    def active(self) -> AbstractContextManager[object]:
        return _all_active(self.parts)

    def ended(self, usage: Usage, error: AssistantServiceError | None) -> None:
        for part in self.parts:
            part.ended(usage, error)


@attrs.frozen
class _SeveralTools:
    parts: tuple[ToolObservation, ...]

    def active(self) -> AbstractContextManager[object]:
        return _all_active(self.parts)

    def ended(self, outcome: ToolOutcome) -> None:
        for part in self.parts:
            part.ended(outcome)


@attrs.frozen
class _SeveralRuns:
    parts: tuple[RunObservation, ...]

    def first_text(self, seconds: float) -> None:
        for part in self.parts:
            part.first_text(seconds)

    def step_started(self, index: int) -> StepObservation:
        return _SeveralSteps(tuple(part.step_started(index) for part in self.parts))

    def tool_call_started(self, call: ToolCall) -> ToolObservation:
        return _SeveralTools(tuple(part.tool_call_started(call) for part in self.parts))

    def ended(
        self, status: str, usage: Usage, seconds: float, error: AssistantServiceError | None
    ) -> None:
        for part in self.parts:
            part.ended(status, usage, seconds, error)


@attrs.frozen
class _Several:
    parts: tuple[Observer, ...]

    def run_started(self, run: RunInfo) -> RunObservation:
        return _SeveralRuns(tuple(part.run_started(run) for part in self.parts))

    def upstream_call(self, call: UpstreamCall) -> None:
        for part in self.parts:
            part.upstream_call(call)

    def http_request(self, request: HttpRequest) -> None:
        for part in self.parts:
            part.http_request(request)

    def websocket_opened(self) -> None:
        for part in self.parts:
            part.websocket_opened()

    def websocket_closed(self) -> None:
        for part in self.parts:
            part.websocket_closed()

    def run_slots(self, in_use: int, limit: int) -> None:
        for part in self.parts:
            part.run_slots(in_use, limit)

    def refused(self, code: str) -> None:
        for part in self.parts:
            part.refused(code)

    def breaker_changed(self, upstream: str, state: str) -> None:
        for part in self.parts:
            part.breaker_changed(upstream, state)


ABANDONED = "abandoned"
"""The status of a run whose caller stopped reading, or was cancelled, before its end."""


def observed_run(
    events: AsyncGenerator[RunEvent, None], run: RunObservation
) -> AsyncGenerator[RunEvent, None]:
    """``events`` as they are, reporting the run's first text and its end to ``run``.

    Returns ``events`` itself when ``run`` observes nothing. Closing the result
    closes ``events``.
    """
    if run is NO_RUN_OBSERVATION:
        return events
    return _observed_run(events, run)


async def _observed_run(
    events: AsyncGenerator[RunEvent, None], run: RunObservation
) -> AsyncGenerator[RunEvent, None]:
    started = time.perf_counter()
    waiting_for_text = True
    ended = False
    try:
        async with contextlib.aclosing(events):
            async for event in events:
                if waiting_for_text and isinstance(event, TextDelta):
                    waiting_for_text = False
                    run.first_text(time.perf_counter() - started)
                elif isinstance(event, (RunCompleted, RunCancelled, RunRequiresApproval)):
                    ended = True
                    run.ended(event.result.status.value, event.result.usage, _since(started), None)
                elif isinstance(event, RunFailed):
                    ended = True
                    run.ended(
                        event.result.status.value, event.result.usage, _since(started), event.error
                    )
                yield event
    finally:
        if not ended:
            run.ended(ABANDONED, Usage(), _since(started), None)


async def observed_step(
    stream: AsyncIterator[ModelEvent], step: StepObservation
) -> AsyncGenerator[ModelEvent, None]:
    """The model's ``stream`` for one step, its code run inside ``step.active()``.

    Reports the step's end with its usage, and its error when it raised one.
    """
    usage = Usage()
    error: AssistantServiceError | None = None
    try:
        while True:
            with step.active():
                try:
                    event = await anext(stream)
                except StopAsyncIteration:
                    break
            if isinstance(event, ModelUsage):
                usage += event.usage
            yield event
    except AssistantServiceError as raised:
        error = raised
        raise
    finally:
        closing = getattr(stream, "aclose", None)
        if closing is not None:
            with step.active():
                await closing()
        step.ended(usage, error)


def _since(started: float) -> float:
    return time.perf_counter() - started
