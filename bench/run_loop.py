"""The run loop's own overhead, on the scripted model (no network, no real model).

Prints microseconds per turn without tools, and per tool call (async and sync
tools, 1 and 8 calls in a round). Usage: ``python bench/run_loop.py [turns]``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

import anyio

from assistant_service import AssistantProfile, AssistantService, FunctionToolRegistry
from assistant_service.adapters.config.memory import InMemoryConfigRepository
from assistant_service.adapters.llm.scripted import (
    ScriptedModel,
    ScriptedStep,
    StepRequest,
    call_tool,
)
from assistant_service.domain.models import Message
from assistant_service.domain.steps import ToolResults


async def echo_async(text: str) -> str:
    """Echo, as a coroutine."""
    return text


def echo_sync(text: str) -> str:
    """Echo, in a worker thread."""
    return text


def responder(tool: str | None, calls: int) -> Callable[[StepRequest, list[Message]], ScriptedStep]:
    def respond(request: StepRequest, _history: list[Message]) -> ScriptedStep:
        if tool is None or isinstance(request.step, ToolResults):
            return ScriptedStep(text="done", deltas=("do", "ne"))
        return ScriptedStep(tool_calls=tuple(call_tool(tool, {"text": "x"}) for _ in range(calls)))

    return respond


async def measure(tool: str | None, calls: int, turns: int) -> float:
    """Seconds per turn, over ``turns`` turns on one conversation."""
    registry = FunctionToolRegistry()
    registry.register(echo_async, namespace="bench")
    registry.register(echo_sync, namespace="bench")
    profile = AssistantProfile(id="bench", model="scripted", tools=tuple(registry.names()))
    model = ScriptedModel(responder=responder(tool, calls))
    service = AssistantService(
        model=model,
        state=model.store,
        configs=InMemoryConfigRepository.of(profile),
        tools=registry,
        default_assistant_id="bench",
    )
    for _ in range(20):  # warm up
        await service.chat(await service.start_conversation(), "hi")
    elapsed = 0.0
    for _ in range(turns):
        # A fresh conversation per turn, opened outside the timing: a growing
        # scripted history would otherwise be measured instead of the loop.
        conversation = await service.start_conversation()
        started = time.perf_counter()
        await service.chat(conversation, "hi")
        elapsed += time.perf_counter() - started
    return elapsed / turns


async def main(turns: int) -> None:
    baseline = await measure(None, 0, turns)
    print(f"turn without tools: {baseline * 1e6:8.1f} µs/turn  ({turns} turns)")
    cases: list[tuple[str, str, int]] = [
        ("async tool", "bench.echo_async", 1),
        ("async tool", "bench.echo_async", 8),
        ("sync tool (thread)", "bench.echo_sync", 1),
        ("sync tool (thread)", "bench.echo_sync", 8),
    ]
    for label, name, calls in cases:
        per_turn = await measure(name, calls, turns)
        per_call = (per_turn - baseline) / calls
        print(
            f"{label:>20} x{calls}: {per_turn * 1e6:8.1f} µs/turn, "
            f"{per_call * 1e6:8.1f} µs per tool call over the baseline"
        )


def run(argv: list[str]) -> Any:
    turns = int(argv[1]) if len(argv) > 1 else 2000
    return anyio.run(main, turns)


if __name__ == "__main__":
    run(sys.argv)
