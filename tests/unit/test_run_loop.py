"""The run loop, driven through the facade with the scripted model and real function tools."""

from __future__ import annotations

import json
import logging
import threading
from contextlib import aclosing

import anyio
import pytest

from assistant_service.adapters.llm.scripted import (
    INTERRUPTED_OUTPUT,
    call_tool,
    call_tools,
    fail,
    reply,
)
from assistant_service.domain.errors import RunLimitError, UpstreamError, UpstreamUnavailableError
from assistant_service.domain.events import (
    MessageCompleted,
    RunCompleted,
    RunFailed,
    RunStarted,
    TextDelta,
    ToolCallCompleted,
    ToolCallStarted,
)
from assistant_service.domain.models import RunStatus, Usage
from assistant_service.domain.steps import ToolResults
from assistant_service.domain.tools import OutcomeStatus

pytestmark = pytest.mark.anyio


async def collect(service, conversation_id, message):
    async with aclosing(service.stream(conversation_id, message)) as events:
        return [event async for event in events]


async def test_a_text_answer_streams_deltas_then_the_message(harness):
    harness.model.script(reply("Hello there, how can I help?"))
    service = harness.service()
    conversation = await service.start_conversation()

    events = await collect(service, conversation, "hi")

    assert isinstance(events[0], RunStarted)
    assert events[0].conversation_id == conversation
    deltas = [e.text for e in events if isinstance(e, TextDelta)]
    assert len(deltas) > 1
    assert "".join(deltas) == "Hello there, how can I help?"
    assert isinstance(events[-2], MessageCompleted)
    assert isinstance(events[-1], RunCompleted)
    result = events[-1].result
    assert result.status is RunStatus.COMPLETED
    assert result.texts == ["Hello there, how can I help?"]
    assert result.tool_rounds == 0


async def test_tool_calls_run_concurrently_and_outputs_return_in_call_order(harness):
    second_started = anyio.Event()

    async def first() -> str:
        """Waits until the second call has started: it deadlocks if calls run one by one."""
        with anyio.fail_after(5):
            await second_started.wait()
        return "first done"

    async def second() -> str:
        """Starts the first."""
        second_started.set()
        return "second done"

    harness.tool(first)
    harness.tool(second)
    harness.model.script(
        call_tools(call_tool("t.first", call_id="c1"), call_tool("t.second", call_id="c2")),
        reply("both done"),
    )
    service = harness.service()
    conversation = await service.start_conversation()

    events = await collect(service, conversation, "go")

    started = [e.call.id for e in events if isinstance(e, ToolCallStarted)]
    completed = [e.outcome for e in events if isinstance(e, ToolCallCompleted)]
    assert started == ["c1", "c2"]
    assert [o.call.id for o in completed] == ["c1", "c2"]
    assert [o.output for o in completed] == ["first done", "second done"]
    continuation = harness.model.requests[1].step
    assert isinstance(continuation, ToolResults)
    assert [o.call.id for o in continuation.outcomes] == ["c1", "c2"]
    assert events[-1].result.texts == ["both done"]


async def test_sync_tools_run_in_worker_threads_in_parallel(harness):
    barrier = threading.Barrier(2, timeout=5)
    loop_thread = threading.get_ident()

    def left() -> str:
        """Meets right at the barrier."""
        barrier.wait()
        return "left" if threading.get_ident() != loop_thread else "on the loop!"

    def right() -> str:
        """Meets left at the barrier."""
        barrier.wait()
        return "right" if threading.get_ident() != loop_thread else "on the loop!"

    harness.tool(left)
    harness.tool(right)
    harness.model.script(call_tools(call_tool("t.left"), call_tool("t.right")), reply("ok"))
    service = harness.service()

    result = await service.chat(await service.start_conversation(), "go")

    assert [o.output for o in result.tool_outcomes] == ["left", "right"]
    assert all(o.ok for o in result.tool_outcomes)


async def test_a_slow_async_tool_times_out_and_the_run_goes_on(harness):
    cancelled = anyio.Event()

    async def slow() -> str:
        """Never finishes in time."""
        try:
            await anyio.sleep(30)
        finally:
            cancelled.set()
        return "late"

    harness.tool(slow)
    harness.model.script(call_tools(call_tool("t.slow")), reply("sorry, it timed out"))
    service = harness.service(tool_timeout=0.05)

    result = await service.chat(await service.start_conversation(), "go")

    (outcome,) = result.tool_outcomes
    assert outcome.status is OutcomeStatus.TIMEOUT
    assert "timed out after 0.05 s" in json.loads(outcome.output)["error"]
    assert cancelled.is_set()
    assert result.texts == ["sorry, it timed out"]


async def test_a_slow_sync_tool_is_abandoned_at_its_timeout(harness):
    release = threading.Event()

    def blocking() -> str:
        """Blocks its thread until released."""
        release.wait(5)
        return "late"

    harness.tool(blocking)
    harness.model.script(call_tools(call_tool("t.blocking")), reply("moved on"))
    service = harness.service(tool_timeout=0.05)
    try:
        result = await service.chat(await service.start_conversation(), "go")
    finally:
        release.set()

    assert result.tool_outcomes[0].status is OutcomeStatus.TIMEOUT
    assert result.texts == ["moved on"]


async def test_a_tool_that_raises_becomes_an_error_output(harness):
    def broken(city: str) -> str:
        """Always fails."""
        raise ValueError(f"no weather for {city}")

    harness.tool(broken)
    harness.model.script(call_tools(call_tool("t.broken", {"city": "Atlantis"})), reply("oops"))
    service = harness.service()

    result = await service.chat(await service.start_conversation(), "go")

    (outcome,) = result.tool_outcomes
    assert outcome.status is OutcomeStatus.ERROR
    assert json.loads(outcome.output) == {"error": "ValueError: no weather for Atlantis"}
    sent = harness.model.requests[1].step
    assert isinstance(sent, ToolResults)
    assert sent.outcomes[0].output == outcome.output


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ("{not json", "invalid arguments"),
        ('["a list"]', "invalid arguments"),
        ("{}", "invalid arguments"),  # missing the required parameter
        ('{"city": 12}', "invalid arguments"),  # wrong type
        ('{"city": "Paris", "extra": 1}', "invalid arguments"),  # unknown parameter
    ],
)
async def test_bad_arguments_never_reach_the_tool(harness, arguments, expected):
    calls = []

    def forecast(city: str) -> str:
        """Records its calls."""
        calls.append(city)
        return city

    harness.tool(forecast)
    harness.model.script(call_tools(call_tool("t.forecast", arguments)), reply("fixed"))
    service = harness.service()

    result = await service.chat(await service.start_conversation(), "go")

    (outcome,) = result.tool_outcomes
    assert outcome.status is OutcomeStatus.INVALID_ARGUMENTS
    assert expected in json.loads(outcome.output)["error"]
    assert calls == []
    assert result.status is RunStatus.COMPLETED


async def test_a_tool_outside_the_profile_is_never_called(harness):
    calls = []

    def secret_tool() -> str:
        """Must not run for this assistant."""
        calls.append(1)
        return "ran"

    def public_tool() -> str:
        """Allowed."""
        return "public"

    harness.tool(secret_tool)
    harness.tool(public_tool)
    harness.allowed = ["t.public_tool"]
    harness.model.script(
        call_tools(call_tool("t.secret_tool"), call_tool("t.nowhere"), call_tool("t.public_tool")),
        reply("done"),
    )
    service = harness.service()

    result = await service.chat(await service.start_conversation(), "go")

    statuses = [o.status for o in result.tool_outcomes]
    assert statuses == [OutcomeStatus.NOT_ALLOWED, OutcomeStatus.NOT_ALLOWED, OutcomeStatus.OK]
    assert calls == []
    assert [spec.name for spec in harness.model.requests[0].tools] == ["t.public_tool"]


async def test_calls_over_the_per_round_limit_are_skipped(harness):
    def echo(text: str) -> str:
        """Echoes."""
        return text

    harness.tool(echo)
    harness.model.script(
        call_tools(*(call_tool("t.echo", {"text": str(i)}) for i in range(4))), reply("ok")
    )
    service = harness.service(max_tool_calls_per_round=2)

    result = await service.chat(await service.start_conversation(), "go")

    statuses = [o.status for o in result.tool_outcomes]
    assert statuses == [OutcomeStatus.OK] * 2 + [OutcomeStatus.SKIPPED] * 2


async def test_long_tool_output_is_truncated(harness):
    def big() -> str:
        """Returns a lot."""
        return "x" * 500

    harness.tool(big)
    harness.model.script(call_tools(call_tool("t.big")), reply("ok"))
    service = harness.service(max_tool_output_length=100)

    result = await service.chat(await service.start_conversation(), "go")

    output = result.tool_outcomes[0].output
    assert output.startswith("x" * 100)
    assert output.endswith("[truncated 400 characters]")


async def test_the_round_limit_ends_the_run_and_the_conversation_stays_usable(harness):
    def ping() -> str:
        """Pong."""
        return "pong"

    harness.tool(ping)
    harness.model.script(
        *(call_tools(call_tool("t.ping", call_id=f"c{i}")) for i in range(3)),
        reply("next turn works"),
    )
    service = harness.service(max_tool_rounds=2)
    conversation = await service.start_conversation()

    events = await collect(service, conversation, "loop forever")

    failed = events[-1]
    assert isinstance(failed, RunFailed)
    assert isinstance(failed.error, RunLimitError)
    assert failed.result.tool_rounds == 2
    assert len(failed.result.tool_outcomes) == 2
    result = await service.chat(conversation, "and now?")
    assert result.texts == ["next turn works"]
    assert harness.model.requests[-1].repaired_calls == ("c2",)
    history = await harness.model.store.items(conversation)
    repaired = [i["call_id"] for i in history if i.get("output") == INTERRUPTED_OUTPUT]
    assert repaired == ["c2"]


async def test_a_model_error_fails_the_run_and_the_next_turn_works(harness):
    harness.model.script(
        fail(UpstreamUnavailableError("rate limited", retry_after=3), after_text="Partial "),
        reply("recovered"),
    )
    service = harness.service()
    conversation = await service.start_conversation()

    events = await collect(service, conversation, "hi")

    assert isinstance(events[-1], RunFailed)
    assert events[-1].error.retry_after == 3
    assert events[-1].result.status is RunStatus.FAILED
    assert (await service.chat(conversation, "again")).texts == ["recovered"]
    with pytest.raises(UpstreamError, match="no step left"):
        await service.chat(conversation, "the script is exhausted")


async def test_usage_adds_up_over_the_steps(harness):
    from assistant_service.adapters.llm.scripted import ScriptedStep  # noqa: PLC0415

    def ping() -> str:
        """Pong."""
        return "pong"

    harness.tool(ping)
    harness.model.script(
        ScriptedStep(tool_calls=(call_tool("t.ping"),), usage=Usage(10, 2)),
        ScriptedStep(text="done", usage=Usage(15, 3)),
    )
    service = harness.service()

    result = await service.chat(await service.start_conversation(), "go")

    assert result.usage == Usage(25, 5)
    assert result.usage.total_tokens == 30


async def test_every_tool_call_is_logged_once_with_its_status_and_duration(harness, caplog):
    def add(a: int, b: int) -> int:
        """Adds."""
        return a + b

    def broken() -> str:
        """Always fails."""
        raise ValueError("nope")

    harness.tool(add)
    harness.tool(broken)
    harness.model.script(
        call_tools(call_tool("t.add", {"a": 1, "b": 2}), call_tool("t.broken", {})), reply("ok")
    )
    service = harness.service()
    caplog.set_level(logging.INFO, logger="assistant_service.application")

    await service.chat(await service.start_conversation(), "go")

    completed = [r for r in caplog.records if r.getMessage() == "tool.completed"]
    assert sorted((r.tool, r.status, r.levelno) for r in completed) == [
        ("t.add", "ok", logging.INFO),
        ("t.broken", "error", logging.INFO),
    ]
    assert all(r.duration_ms >= 0 for r in completed)
    [raised] = [r for r in caplog.records if r.getMessage() == "tool.raised"]
    assert raised.tool == "t.broken"
    assert raised.exc_info is not None
