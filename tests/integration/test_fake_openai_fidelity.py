"""The fake OpenAI server sends only what the SDK's typed models say the real API sends.

Representative flows are driven through the real SDK against the fake; every
JSON body and SSE ``data:`` payload the fake sent is then validated against
the SDK's own types (:mod:`fakeopenai.fidelity`). Malformed bytes sent on
purpose (``malformed_after``) are not events and are not checked.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import httpx2
import pytest

openai = pytest.importorskip("openai")

from assistant_service.adapters.llm.openai.assistants._legacy_sdk import deprecated_api  # noqa: E402
from fakeopenai import FakeOpenAI  # noqa: E402
from fakeopenai import turns as t  # noqa: E402
from fakeopenai.assistants import call, calls, ended, plant_run, reply  # noqa: E402
from fakeopenai.assistants_state import RunStep  # noqa: E402
from fakeopenai.chat import ChatStep, chat_calls, chat_reply  # noqa: E402
from fakeopenai.fidelity import check, problems  # noqa: E402
from fakeopenai.server import JSONReply, SSEEvent  # noqa: E402

pytestmark = pytest.mark.anyio


def all_problems(fake: FakeOpenAI) -> list[str]:
    return [p for request, reply in fake.replies for p in problems(request, reply)]


def sent_kinds(fake: FakeOpenAI) -> set[str]:
    """What was sent: route names, and each event's SSE name or ``type``."""
    kinds: set[str] = set()
    for request, sent in fake.replies:
        kinds.add(f"{request.route}:{sent.status}")
        for item in () if isinstance(sent, JSONReply) else sent.items:
            if isinstance(item, SSEEvent):
                data = item.data if isinstance(item.data, dict) else {}
                kinds.add(item.event or ("error" if "error" in data else "chunk"))
    return kinds


async def drain(stream: Any) -> None:
    """Read a stream to its end; an error event, a dropped connection or broken JSON ends it too."""
    with contextlib.suppress(openai.APIError, httpx2.TransportError, ValueError):
        async for _ in stream:
            pass


async def legacy(make: Callable[[], Awaitable[Any]]) -> Any:
    """Call a (deprecated) Assistants-API method, its warning silenced as the adapter does."""
    with deprecated_api():
        pending = make()
    return await pending


async def test_responses_and_conversations_payloads_fit_the_sdk_types(
    fake_openai: FakeOpenAI, openai_client: Any
) -> None:
    fake_openai.responses.turn(
        t.text("Hello there", deltas=["Hel", "lo there"]),
        t.calls(t.call("a__b", '{"x": 1}', pieces=['{"x"', ": 1}"]), t.call("c", "{}")),
        t.text("done"),
        t.refusal("I can't help with that"),
        t.text("x", fail="the model fell over"),
        t.Turn(fail="slow down", fail_code="rate_limit_exceeded"),
        t.text("Cut sh", incomplete="max_output_tokens"),
        t.text("x", error="overloaded"),
        t.text("a b c d", drop_after=4),
        t.text("a b c d", end_after=5),
        t.text("a b", malformed_after=3),
    )
    conversation = await openai_client.conversations.create(metadata={"user": "u1"})
    await openai_client.conversations.items.create(
        conversation.id,
        items=[
            {"type": "message", "role": "user", "content": "earlier"},
            {"type": "message", "role": "assistant", "content": "noted"},
        ],
    )

    async def ask(input_: Any) -> None:
        stream = await openai_client.responses.create(
            model="gpt-test", conversation=conversation.id, input=input_, stream=True
        )
        await drain(stream)

    await ask("hi")
    await ask("call the tools")
    # the calls were stored with the turn: answering them is a valid request
    stored = fake_openai.responses.conversations[conversation.id].items
    outputs = [
        {"type": "function_call_output", "call_id": i["call_id"], "output": "ok"}
        for i in stored
        if i["type"] == "function_call"
    ]
    await ask(outputs)
    for prompt in ("refuse", "fail", "rate limited", "cut", "error", "drop", "end", "malformed"):
        await ask(prompt)
    await openai_client.conversations.retrieve(conversation.id)
    await openai_client.conversations.items.list(conversation.id, order="asc")
    with contextlib.suppress(openai.NotFoundError):
        await openai_client.conversations.retrieve("conv_missing")

    assert all_problems(fake_openai) == []
    assert {
        "response.created",
        "response.in_progress",
        "response.output_text.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.refusal.done",
        "response.failed",
        "response.incomplete",
        "error",
        "response.completed",
        "conversations.items.list:200",
        "conversations.retrieve:404",
    } <= sent_kinds(fake_openai)


async def test_assistants_payloads_fit_the_sdk_types(
    fake_openai: FakeOpenAI, openai_client: Any
) -> None:
    state = fake_openai.extensions["assistants"]
    threads = openai_client.beta.threads
    state.play(
        calls(call("a__b", '{"x": 1}', call_id="call_1"), call("c", "{}", call_id="call_2")),
        reply("It is sunny.", deltas=("It is ", "sunny.")),
        ended("failed", code="rate_limit_exceeded", message="slow down"),
        ended("incomplete"),
        ended("expired"),
        RunStep(text="partial", error_event="the model crashed"),
        RunStep(text="hi", malformed_after=3),
    )
    made = await legacy(
        lambda: openai_client.beta.assistants.create(model="gpt-test", metadata={"k": "v"})
    )
    await legacy(lambda: openai_client.beta.assistants.update(made.id, instructions="Be brief."))
    await legacy(lambda: openai_client.beta.assistants.retrieve(made.id))
    [listed] = [a async for a in await legacy(openai_client.beta.assistants.list)]
    assert listed.instructions == "Be brief."
    state.create_assistant({"model": "gpt-test"}, assistant_id="asst_1")
    thread = await legacy(lambda: threads.create(metadata={"user": "u1"}))
    await legacy(lambda: threads.retrieve(thread.id))

    async def run_once(text: str) -> None:
        await legacy(lambda: threads.messages.create(thread.id, role="user", content=text))
        await drain(
            await legacy(lambda: threads.runs.create(thread.id, assistant_id="asst_1", stream=True))
        )

    await run_once("weather?")
    run_id = state.runs[thread.id][-1]["id"]
    tool_outputs = [
        {"tool_call_id": "call_1", "output": "1"},
        {"tool_call_id": "call_2", "output": "2"},
    ]
    await drain(
        await legacy(
            lambda: threads.runs.submit_tool_outputs(
                run_id, thread_id=thread.id, tool_outputs=tool_outputs, stream=True
            )
        )
    )
    for text in ("fail", "incomplete", "expire", "error"):
        await run_once(text)
    await legacy(lambda: threads.messages.create(thread.id, role="user", content="malformed"))
    with contextlib.suppress(openai.APIError, ValueError):
        await drain(
            await legacy(lambda: threads.runs.create(thread.id, assistant_id="asst_1", stream=True))
        )
    # a run left active (as the malformed stream left it, or a crash) is cancelled
    active = state.active_run(thread.id) or plant_run(state, thread.id, "in_progress")
    await legacy(lambda: threads.runs.cancel(active["id"], thread_id=thread.id))
    await legacy(lambda: threads.runs.retrieve(active["id"], thread_id=thread.id))
    await legacy(lambda: threads.messages.list(thread.id, order="asc"))
    await legacy(lambda: threads.runs.list(thread.id))
    with contextlib.suppress(openai.BadRequestError):
        await legacy(lambda: threads.runs.cancel(run_id, thread_id=thread.id))
    with pytest.raises(openai.NotFoundError, match="No assistant found with id 'asst_gone'"):
        await legacy(lambda: threads.runs.create(thread.id, assistant_id="asst_gone", stream=True))
    with pytest.raises(openai.NotFoundError):
        await legacy(lambda: openai_client.beta.assistants.retrieve("asst_gone"))

    assert all_problems(fake_openai) == []
    assert {
        "assistants.create:200",
        "assistants.update:200",
        "assistants.retrieve:200",
        "assistants.list:200",
        "runs.create:404",
        "thread.run.created",
        "thread.run.step.created",
        "thread.message.delta",
        "thread.message.completed",
        "thread.run.requires_action",
        "thread.run.completed",
        "thread.run.failed",
        "thread.run.incomplete",
        "thread.run.expired",
        "error",
        "done",
        "runs.cancel:200",
        "runs.cancel:400",
        "messages.list:200",
    } <= sent_kinds(fake_openai)


async def test_chat_completion_chunks_fit_the_sdk_types(
    fake_openai: FakeOpenAI, openai_client: Any
) -> None:
    script = fake_openai.extensions["chat"]
    script.play(
        chat_reply("Hello there", deltas=("Hello ", "there")),
        chat_calls(("call_1", "a__b", '{"x": 1}'), ("call_2", "c", "{}"), text="Let me see."),
        chat_calls(("call_3", "a__b", "{}"), omit_ids=True),
        ChatStep(text="long", finish_reason="length"),
        ChatStep(text="partial", error="the model crashed"),
        ChatStep(text="x", malformed_after=2),
    )
    for _ in range(6):
        stream = await openai_client.chat.completions.create(
            model="gpt-test",
            messages=[{"role": "user", "content": "hi"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        with contextlib.suppress(ValueError):
            await drain(stream)

    assert all_problems(fake_openai) == []
    assert {"chunk", "error", "chat.completions.create:200"} <= sent_kinds(fake_openai)


def test_the_check_finds_what_the_real_api_would_not_send() -> None:
    """The validator itself: a missing field, a wrong type, an undeclared field."""
    from openai.types.beta.threads.runs import RunStep as SDKRunStep  # noqa: PLC0415

    assert check(SDKRunStep, {"id": "step_1", "run_id": "run_1"}, "step")
    chunk = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    assert check(openai.types.chat.ChatCompletionChunk, {**chunk, "choices": []}, "chunk") == []
    assert check(openai.types.chat.ChatCompletionChunk, {**chunk, "choices": 3}, "chunk")
    undeclared = check(openai.types.chat.ChatCompletionChunk, {**chunk, "choices": [], "x": 1}, "c")
    assert undeclared == ["c: undeclared field $.x"]


def test_a_union_member_with_another_tag_adds_no_noise() -> None:
    from openai.types.conversations.conversation_item import ConversationItem  # noqa: PLC0415

    part = {"type": "output_text", "text": "x"}  # no annotations: the API always sends them
    item = {"id": "m", "type": "message", "role": "assistant", "status": "completed"}
    assert check(ConversationItem, {**item, "content": [part]}, "item") == [
        "item: ('Message', 'content', 0, 'ResponseOutputText', 'annotations'): Field required"
    ]
