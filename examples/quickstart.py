"""A first run on the offline model: a plain answer, then a tool call, streamed.

Run it with ``python examples/quickstart.py``: no key, no network.
"""

from __future__ import annotations

import anyio

from assistant_service import (
    MessageCompleted,
    RunCompleted,
    RunFailed,
    TextDelta,
    ToolCallCompleted,
    ToolCallStarted,
    bootstrap,
)


async def main() -> None:
    service = bootstrap()  # the demo assistant, its demo tools and the offline model
    conversation_id = await service.start_conversation()
    for message in ("Hello!", "What is the weather? use get_forecast city=Lisbon days=2"):
        print(f"\nyou> {message}\nassistant> ", end="")
        async for event in service.stream(conversation_id, message):
            if isinstance(event, TextDelta):
                print(event.text, end="", flush=True)
            elif isinstance(event, ToolCallStarted):
                print(f"\n  [calling {event.call.name} {event.call.arguments}]")
            elif isinstance(event, ToolCallCompleted):
                outcome = event.outcome
                print(f"  [{outcome.status.value} in {outcome.duration * 1000:.1f} ms]")
            elif isinstance(event, MessageCompleted):
                print()
            elif isinstance(event, RunCompleted):
                print(f"  (run {event.result.run_id}: {event.result.tool_rounds} tool round(s))")
            elif isinstance(event, RunFailed):
                print(f"\n  run failed: {event.error.message}")


if __name__ == "__main__":
    anyio.run(main)
