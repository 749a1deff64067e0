"""Invoke one round of tool calls: concurrently, each under a timeout, never raising."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

import anyio

from assistant_service.application.observing import NO_RUN_OBSERVATION
from assistant_service.domain.errors import NotFoundError, ToolArgumentsError
from assistant_service.domain.models import RunLimits
from assistant_service.domain.tools import (
    INTERRUPTED_OUTPUT,
    BoundTool,
    OutcomeStatus,
    ToolCall,
    ToolOutcome,
)

if TYPE_CHECKING:
    from assistant_service.ports.observer import RunObservation
    from assistant_service.ports.tools import ToolRegistry

log = logging.getLogger(__name__)


def _error_output(message: str) -> str:
    return json.dumps({"error": message})


async def invoke_round(
    calls: Sequence[ToolCall],
    registry: ToolRegistry,
    allowed: Sequence[str],
    limits: RunLimits,
    observation: RunObservation = NO_RUN_OBSERVATION,
) -> list[ToolOutcome]:
    """Run ``calls`` concurrently and return their outcomes in call order.

    A call beyond ``limits.max_tool_calls_per_round`` is skipped. Cancelling
    the caller cancels every call in flight (sync tools in threads are
    abandoned: their thread runs on, its result is dropped). ``observation``
    is told of each call that runs, the cancelled ones included.
    """
    outcomes: list[ToolOutcome | None] = [None] * len(calls)
    allowed_names = frozenset(allowed)

    async def invoke(index: int, call: ToolCall) -> None:
        if observation is NO_RUN_OBSERVATION:
            outcomes[index] = await invoke_one(call, registry, allowed_names, limits)
            return
        seen = observation.tool_call_started(call)
        outcome = ToolOutcome(call, OutcomeStatus.ERROR, INTERRUPTED_OUTPUT)
        try:
            with seen.active():
                outcome = await invoke_one(call, registry, allowed_names, limits)
        finally:
            seen.ended(outcome)
        outcomes[index] = outcome

    async with anyio.create_task_group() as group:
        for index, call in enumerate(calls):
            if index < limits.max_tool_calls_per_round:
                group.start_soon(invoke, index, call)
            else:
                outcomes[index] = ToolOutcome(
                    call,
                    OutcomeStatus.SKIPPED,
                    _error_output(
                        f"not run: at most {limits.max_tool_calls_per_round} tool calls per step"
                    ),
                )
    return [outcome for outcome in outcomes if outcome is not None]


async def invoke_one(
    call: ToolCall,
    registry: ToolRegistry,
    allowed: frozenset[str],
    limits: RunLimits,
) -> ToolOutcome:
    """Run one call; every failure becomes an error outcome the model can read."""
    started = time.perf_counter()

    def outcome(status: OutcomeStatus, output: str) -> ToolOutcome:
        done = ToolOutcome(call, status, output, time.perf_counter() - started)
        # One line per call, successful ones included: name, status and duration.
        log.info(
            "tool.completed",
            extra={
                "tool": call.name,
                "call_id": call.id,
                "status": status.value,
                "duration_ms": round(done.duration * 1000, 1),
            },
        )
        return done

    if call.name not in allowed:
        return outcome(
            OutcomeStatus.NOT_ALLOWED,
            _error_output(f"tool {call.name!r} is not available to this assistant"),
        )
    try:
        bound = registry.bind(call)
    except NotFoundError:
        return outcome(OutcomeStatus.NOT_ALLOWED, _error_output(f"unknown tool {call.name!r}"))
    except ToolArgumentsError as error:
        return outcome(
            OutcomeStatus.INVALID_ARGUMENTS, _error_output(f"invalid arguments: {error.message}")
        )

    with anyio.move_on_after(limits.tool_timeout) as scope:
        try:
            result = await _call(bound)
            text = bound.render(result)
        except Exception as error:
            log.warning(
                "tool.raised",
                extra={"tool": call.name, "error_type": type(error).__name__},
                exc_info=True,
            )
            return outcome(OutcomeStatus.ERROR, _error_output(_describe(error)))
    if scope.cancelled_caught:
        return outcome(
            OutcomeStatus.TIMEOUT,
            _error_output(f"tool {call.name!r} timed out after {limits.tool_timeout:g} s"),
        )
    return outcome(OutcomeStatus.OK, _truncate(text, limits.max_tool_output_length))


async def _call(bound: BoundTool) -> object:
    if bound.is_async:
        return await bound.function()
    # anyio's default limiter bounds the worker threads (40 per event loop).
    return await anyio.to_thread.run_sync(bound.function, abandon_on_cancel=True)


def _describe(error: Exception) -> str:
    return _truncate(f"{type(error).__name__}: {error}", 1_000)


def _truncate(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + f"... [truncated {len(text) - limit} characters]"
