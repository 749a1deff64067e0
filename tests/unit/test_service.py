"""The facade: input checks, one run per conversation, cancellation."""

from __future__ import annotations

from contextlib import aclosing

import anyio
import pytest

from assistant_service.adapters.llm.scripted import call_tool, call_tools, reply
from assistant_service.domain.errors import ConflictError, InvalidInputError, NotFoundError
from assistant_service.domain.events import RunCompleted, TextDelta, ToolCallStarted
from assistant_service.domain.models import Role

pytestmark = pytest.mark.anyio


async def test_unknown_conversation_and_assistant_are_not_found(harness):
    service = harness.service()
    with pytest.raises(NotFoundError, match="conversation"):
        await service.chat("conv_missing", "hi")
    with pytest.raises(NotFoundError, match="assistant"):
        await service.start_conversation("nobody")


@pytest.mark.parametrize(
    ("conversation_id", "field"),
    [("", "conversation_id"), ("a b", "conversation_id"), ("x" * 129, "conversation_id")],
)
async def test_malformed_conversation_ids_are_invalid_input(harness, conversation_id, field):
    service = harness.service()
    with pytest.raises(InvalidInputError) as caught:
        await service.chat(conversation_id, "hi")
    assert field in caught.value.fields


@pytest.mark.parametrize("message", ["", "   \n\t"])
async def test_an_empty_message_is_invalid_input(harness, message):
    service = harness.service()
    conversation = await service.start_conversation()
    with pytest.raises(InvalidInputError) as caught:
        await service.chat(conversation, message)
    assert caught.value.fields == {"message": "must not be empty"}
    assert harness.model.requests == []


async def test_an_over_long_message_is_invalid_input(harness):
    service = harness.service(max_message_length=10)
    conversation = await service.start_conversation()
    with pytest.raises(InvalidInputError) as caught:
        await service.chat(conversation, "x" * 11)
    assert caught.value.fields == {"message": "at most 10 characters, got 11"}
    harness.model.script(reply("fits"))
    assert (await service.chat(conversation, "x" * 10)).texts == ["fits"]


async def test_no_default_assistant_needs_an_assistant_id(harness):
    service = harness.service()
    service.default_assistant_id = None
    with pytest.raises(InvalidInputError) as caught:
        await service.start_conversation()
    assert "assistant_id" in caught.value.fields
    assert (await service.profile("tester")).id == "tester"


async def test_a_second_run_on_a_busy_conversation_is_refused(harness):
    harness.model.script(reply("one two three four five six", delay=0.01))
    service = harness.service()
    conversation = await service.start_conversation()
    other = await service.start_conversation()

    async with aclosing(service.stream(conversation, "first")) as events:
        first = await events.__anext__()  # the run is now active
        assert isinstance(await events.__anext__(), TextDelta)  # and its step has begun
        with pytest.raises(ConflictError):
            await service.chat(conversation, "second")
        # Runs on other conversations are not affected, even while this one is busy.
        harness.model.script(reply("other conversation"))
        assert (await service.chat(other, "meanwhile")).texts == ["other conversation"]
        rest = [event async for event in events]
    assert first.conversation_id == conversation
    assert isinstance(rest[-1], RunCompleted)
    harness.model.script(reply("free again"))
    assert (await service.chat(conversation, "now free")).texts == ["free again"]


async def test_closing_a_stream_early_frees_the_conversation(harness):
    harness.model.script(reply("a b c d e f g h", delay=0.01), reply("next"))
    service = harness.service()
    conversation = await service.start_conversation()

    async with aclosing(service.stream(conversation, "go")) as events:
        async for event in events:
            if isinstance(event, TextDelta):
                break

    assert (await service.chat(conversation, "again")).texts == ["next"]


async def test_cancelling_the_consumer_cancels_tools_in_flight(harness):
    started = anyio.Event()
    cancelled = anyio.Event()

    async def forever() -> str:
        """Runs until cancelled."""
        started.set()
        try:
            await anyio.sleep_forever()
        finally:
            cancelled.set()
        return "never"  # pragma: no cover

    harness.tool(forever)
    harness.model.script(call_tools(call_tool("t.forever", call_id="c1")))
    service = harness.service(tool_timeout=60)
    conversation = await service.start_conversation()
    seen = []

    async def consume() -> None:
        async with aclosing(service.stream(conversation, "go")) as events:
            async for event in events:
                seen.append(event)  # noqa: PERF401 -- keep what arrived before the cancellation

    async with anyio.create_task_group() as group:
        group.start_soon(consume)
        with anyio.fail_after(5):
            await started.wait()
        group.cancel_scope.cancel()

    assert cancelled.is_set()
    assert any(isinstance(e, ToolCallStarted) for e in seen)
    # The conversation is free again and the interrupted call is repaired on the next turn.
    harness.model.script(reply("fresh start"))
    result = await service.chat(conversation, "hello again")
    assert result.texts == ["fresh start"]
    assert harness.model.requests[-1].repaired_calls == ("c1",)


async def test_history_lists_user_and_assistant_messages(harness):
    harness.model.script(reply("first answer"), reply("second answer"))
    service = harness.service()
    conversation = await service.start_conversation()
    await service.chat(conversation, "first question")
    await service.chat(conversation, "second question")

    history = await service.history(conversation)

    assert [(m.role, m.text) for m in history] == [
        (Role.USER, "first question"),
        (Role.ASSISTANT, "first answer"),
        (Role.USER, "second question"),
        (Role.ASSISTANT, "second answer"),
    ]
