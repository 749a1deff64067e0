"""What metrics and tracing add to a turn, on the scripted model (no network).

A turn here is a realistic small one: the model calls one async tool, then
answers in a few text deltas (two model steps, one tool call). The cases run
in interleaved blocks, so drift in the machine's speed hits every case alike,
and each reports its best block: on a shared machine the other blocks measure
the neighbours. Prints µs per turn and the added µs per turn.

Usage: ``python bench/observability.py [--turns N] [--blocks B]``.
"""

from __future__ import annotations

import argparse
import statistics
import time
import timeit
from collections.abc import Sequence
from typing import Any

import anyio
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from prometheus_client import CollectorRegistry

from assistant_service import AssistantProfile, AssistantService, FunctionToolRegistry
from assistant_service.adapters.config.memory import InMemoryConfigRepository
from assistant_service.adapters.llm.scripted import (
    ScriptedModel,
    ScriptedStep,
    StepRequest,
    call_tool,
)
from assistant_service.adapters.observability.otel import OpenTelemetryObserver
from assistant_service.adapters.observability.prometheus import PrometheusObserver
from assistant_service.application.observing import NO_OBSERVER, combine
from assistant_service.domain.models import Message, Usage
from assistant_service.domain.steps import ToolResults
from assistant_service.domain.tools import OutcomeStatus, ToolOutcome
from assistant_service.ports.observer import Observer, RunInfo


class Dropping(SpanExporter):
    """Exports nowhere: the batch processor's own cost stays, the network's does not."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:  # noqa: ARG002 -- the SDK's signature
        return SpanExportResult.SUCCESS


async def echo(text: str) -> str:
    """Echo, as a coroutine."""
    return text


def respond(request: StepRequest, _history: list[Message]) -> ScriptedStep:
    if isinstance(request.step, ToolResults):
        return ScriptedStep(text="all done now", usage=Usage(10, 4))
    return ScriptedStep(tool_calls=(call_tool("bench.echo", {"text": "x"}),), usage=Usage(8, 2))


def service(observer: Observer) -> AssistantService:
    registry = FunctionToolRegistry()
    registry.register(echo, namespace="bench")
    profile = AssistantProfile(id="bench", model="scripted", tools=tuple(registry.names()))
    model = ScriptedModel(responder=respond)
    return AssistantService(
        model=model,
        state=model.store,
        configs=InMemoryConfigRepository.of(profile),
        tools=registry,
        default_assistant_id="bench",
        observer=observer,
    )


async def block(assistant: AssistantService, turns: int) -> float:
    elapsed = 0.0
    for _ in range(turns):
        conversation = await assistant.start_conversation()
        started = time.perf_counter()
        await assistant.chat(conversation, "hi")
        elapsed += time.perf_counter() - started
    return elapsed / turns


async def main(turns: int, blocks: int) -> None:
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Dropping()))
    metrics = PrometheusObserver.create("offline", CollectorRegistry())
    tracing = OpenTelemetryObserver.create(provider, "offline")
    cases: dict[str, Any] = {
        "no observer": service(NO_OBSERVER),
        "metrics (Prometheus)": service(metrics),
        "tracing (OpenTelemetry, batch)": service(tracing),
        "metrics + tracing": service(combine([metrics, tracing])),
    }
    for assistant in cases.values():
        await block(assistant, 20)  # warm up
    results: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(blocks):
        for name, assistant in cases.items():
            results[name].append(await block(assistant, turns))
    base = min(results["no observer"])
    print(f"one turn = 2 model steps + 1 tool call; best of {blocks} blocks of {turns} turns")
    for name, seconds in results.items():
        best = min(seconds)
        added = "" if name == "no observer" else f"  (+{(best - base) * 1e6:6.1f} µs)"
        spread = statistics.median(seconds) * 1e6
        print(f"{name:32s} {best * 1e6:8.1f} µs/turn{added}   median {spread:8.1f}")
    print("the hooks of one such turn alone (no run loop; best of 5 x 2000):")
    for name, observer in {
        "metrics (Prometheus)": metrics,
        "tracing (OpenTelemetry, batch)": tracing,
        "metrics + tracing": combine([metrics, tracing]),
    }.items():
        print(f"{name:32s} {hooks_of_one_turn(observer) * 1e6:8.1f} µs/turn")
    provider.shutdown()


def hooks_of_one_turn(observer: Observer) -> float:
    """Seconds for the hook calls the run loop makes in one turn of this benchmark."""
    info = RunInfo("run_1", "conv_1", "bench", "scripted")
    call = call_tool("bench.echo", {"text": "x"})
    outcome = ToolOutcome(call, OutcomeStatus.OK, "x", 0.001)

    def turn() -> None:
        run = observer.run_started(info)
        step = run.step_started(0)
        with step.active():
            pass
        step.ended(Usage(8, 2), None)
        tool = run.tool_call_started(call)
        with tool.active():
            pass
        tool.ended(outcome)
        step = run.step_started(1)
        with step.active():
            run.first_text(0.001)
        step.ended(Usage(10, 4), None)
        run.ended("completed", Usage(18, 6), 0.002, None)

    return min(timeit.repeat(turn, number=2000, repeat=5)) / 2000


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=200)
    parser.add_argument("--blocks", type=int, default=15)
    arguments = parser.parse_args()
    anyio.run(main, arguments.turns, arguments.blocks)
