"""Upstream replies of the wrong shape, on every backend, through the real SDK.

Each malformed reply must fail its call with an ``UpstreamError`` that is a
fault of the upstream's (a 502 at the edge, and counted by the circuit
breaker), never an ``AttributeError`` or ``TypeError`` (a 500); and the
conversation must stay usable: the next call, answered properly, works.
"""

from __future__ import annotations

from contextlib import aclosing
from typing import Any

import pytest

from assistant_service.adapters.llm.openai.assistants._model import OpenAIAssistantsModel
from assistant_service.adapters.llm.openai.chat._model import OpenAIChatModel
from assistant_service.adapters.llm.openai.responses._model import OpenAIResponsesModel
from assistant_service.domain.errors import UpstreamError
from assistant_service.domain.models import AssistantProfile, Message, Role
from assistant_service.domain.steps import ModelMessage, ModelToolCall, UserInput
from assistant_service.domain.tools import ToolSpec
from fakeopenai import JSONReply, RawReply, SSEEvent, SSEReply, event
from fakeopenai import turns as t
from fakeopenai.assistants import reply as assistants_reply
from fakeopenai.assistants_state import run_object
from fakeopenai.chat import chat_reply, chunk, delta

pytestmark = pytest.mark.anyio

PROFILE = AssistantProfile(
    id="helper", model="gpt-test", tools=("kb.lookup",), remote_id="asst_remote"
)
LOOKUP = ToolSpec("kb.lookup", "Look a word up.", {"type": "object", "properties": {}})

# Bodies a server may answer 200 with, where an object with a string id belongs.
NOT_AN_OBJECT_WITH_AN_ID: dict[str, Any] = {
    "no id": JSONReply({"object": "conversation", "created_at": 1, "metadata": {}}),
    "a numeric id": JSONReply({"id": 5, "created_at": 1, "metadata": {}}),
    "an empty id": JSONReply({"id": "", "created_at": 1}),
    "an object id": JSONReply({"id": {"value": "conv_1"}, "created_at": 1}),
    "a list": JSONReply([{"id": "conv_1"}]),
    "a JSON string": JSONReply("conv_1"),
    "null": JSONReply(None),
    "an HTML page": RawReply(b"<html><body>Bad gateway</body></html>", content_type="text/html"),
    "broken JSON": RawReply(b'{"id": "conv_', content_type="application/json"),
    "not JSON": RawReply(b"upstream says no", content_type="application/json"),
}
NOT_A_PAGE: dict[str, Any] = {
    "a list": JSONReply([{"id": "item_1"}]),
    "data a string": JSONReply({"object": "list", "data": "x", "has_more": False}),
    "data of numbers": JSONReply({"object": "list", "data": [1, 2], "has_more": False}),
    "an HTML page": RawReply(b"<html>oops</html>", content_type="text/html"),
    "not JSON": RawReply(b"{", content_type="application/json"),
}


def assert_fault(raised: pytest.ExceptionInfo[UpstreamError]) -> None:
    assert raised.value.code == "upstream_error"
    assert raised.value.fault


async def step(model: Any, conversation: Any, tools: tuple[ToolSpec, ...] = (LOOKUP,)) -> list:
    stream = model.stream_step(conversation, PROFILE, UserInput("hi"), tools)
    async with aclosing(stream) as events:
        return [e async for e in events]


def texts(events: list) -> list[str]:
    return [e.text for e in events if isinstance(e, ModelMessage)]


# --- Responses ------------------------------------------------------------------------------


@pytest.fixture
def responses_model(openai_client: Any) -> OpenAIResponsesModel:
    return OpenAIResponsesModel(openai_client, state="conversations")


@pytest.mark.parametrize("body", NOT_AN_OBJECT_WITH_AN_ID.values(), ids=NOT_AN_OBJECT_WITH_AN_ID)
async def test_responses_a_created_conversation_without_a_string_id_is_an_upstream_error(
    fake_openai, responses_model, body
):
    fake_openai.script("conversations.create", body)
    with pytest.raises(UpstreamError) as raised:
        await responses_model.open_conversation(PROFILE)
    assert_fault(raised)
    fake_openai.responses.turn(t.text("Still here."))
    conversation = await responses_model.open_conversation(PROFILE)
    assert texts(await step(responses_model, conversation)) == ["Still here."]


async def test_responses_a_conversation_without_a_created_at_is_kept(fake_openai, responses_model):
    fake_openai.script("conversations.create", JSONReply({"id": "conv_odd", "created_at": "x"}))
    conversation = await responses_model.open_conversation(PROFILE)
    assert conversation.id == "conv_odd"
    assert conversation.created_at.year >= 2026


@pytest.mark.parametrize(
    "body",
    [
        JSONReply({"object": "conversation", "metadata": {"assistant_id": "helper"}}),
        JSONReply([{"id": "conv_x"}]),
        RawReply(b"<html></html>", content_type="text/html"),
    ],
    ids=["no id", "a list", "an HTML page"],
)
async def test_responses_a_retrieved_conversation_of_the_wrong_shape_is_an_upstream_error(
    fake_openai, responses_model, body
):
    known = fake_openai.responses.add_conversation({"assistant_id": "helper"})
    fake_openai.script("conversations.retrieve", body)
    with pytest.raises(UpstreamError) as raised:
        await responses_model.get_conversation(known.id)
    assert_fault(raised)
    assert (await responses_model.get_conversation(known.id)).assistant_id == "helper"


@pytest.mark.parametrize(
    "body",
    [
        *NOT_A_PAGE.values(),
        JSONReply({"object": "list", "data": [{"type": "message", "role": "user", "content": 5}]}),
        JSONReply(
            {
                "object": "list",
                "data": [
                    {"type": "message", "role": "user", "content": [{"type": "x", "text": 5}]}
                ],
            }
        ),
    ],
    ids=[*NOT_A_PAGE, "content a number", "text a number"],
)
async def test_responses_a_history_page_of_the_wrong_shape_is_an_upstream_error(
    fake_openai, responses_model, body
):
    fake_openai.responses.turn(t.text("Hello."))
    conversation = await responses_model.open_conversation(PROFILE)
    await step(responses_model, conversation)
    fake_openai.script("conversations.items.list", body)
    with pytest.raises(UpstreamError) as raised:
        await responses_model.history(conversation.id)
    assert_fault(raised)
    assert await responses_model.history(conversation.id) == [
        Message(Role.USER, "hi"),
        Message(Role.ASSISTANT, "Hello."),
    ]


def _completed(**response: Any) -> SSEEvent:
    return event("response.completed", **response)


def _response(*output: Any) -> dict[str, Any]:
    return {"id": "resp_1", "status": "completed", "output": list(output)}


BAD_STREAMS: dict[str, tuple[Any, ...]] = {
    "response.completed without its response": (event("response.completed"),),
    "response.completed with a string response": (_completed(response="done"),),
    "an output that is no list": (_completed(response={"id": "r", "output": 5}),),
    "a function call without call_id": (
        _completed(response=_response({"type": "function_call", "name": "kb__lookup"})),
    ),
    "a function call without a name": (
        _completed(response=_response({"type": "function_call", "call_id": "call_1"})),
    ),
    "a function call whose arguments are an object": (
        _completed(
            response=_response(
                {
                    "type": "function_call",
                    "call_id": "call_1",
                    "name": "kb__lookup",
                    "arguments": {"word": "x"},
                }
            )
        ),
    ),
    "a message whose content is a number": (
        _completed(response=_response({"type": "message", "id": "m", "content": 7})),
    ),
    "an item added that is a string": (
        event("response.output_item.added", item="function_call"),
        event("response.output_text.delta", item_id="m", delta=["not", "text"]),
    ),
    "a delta without its text": (event("response.output_text.delta", item_id="m"),),
    "an event that is a list": (SSEEvent([1, 2, 3], event="response.output_text.delta"),),
    "an error event whose code is an object": (event("error", code={"x": 1}, message="no"),),
}


@pytest.mark.parametrize("state", ["conversations", "local"])
@pytest.mark.parametrize("items", BAD_STREAMS.values(), ids=BAD_STREAMS)
async def test_responses_a_stream_of_the_wrong_shape_fails_the_step_and_not_the_conversation(
    fake_openai, openai_client, state, items
):
    model = OpenAIResponsesModel(openai_client, state=state)
    conversation = await model.open_conversation(PROFILE)
    fake_openai.script("responses.create", SSEReply(tuple(items)))
    with pytest.raises(UpstreamError) as raised:
        await step(model, conversation)
    assert_fault(raised)
    fake_openai.responses.turn(t.text("Recovered."))
    assert texts(await step(model, conversation)) == ["Recovered."]
    assert await model.history(conversation.id) == [
        Message(Role.USER, "hi"),
        Message(Role.ASSISTANT, "Recovered."),
    ]


# --- Chat Completions -----------------------------------------------------------------------


BAD_CHUNKS: dict[str, tuple[Any, ...]] = {
    "content a number": (delta({"content": 42}, "stop"),),
    "a tool call id that is a number": (
        delta({"tool_calls": [{"index": 0, "id": 7, "function": {"name": "kb__lookup"}}]}),
        delta({}, "tool_calls"),
    ),
    "arguments that are an object": (
        delta(
            {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "call_1",
                        "function": {"name": "kb__lookup", "arguments": {"word": "x"}},
                    }
                ]
            }
        ),
        delta({}, "tool_calls"),
    ),
    "a tool call without a name": (
        delta({"tool_calls": [{"index": 0, "id": "call_1", "function": {"arguments": "{}"}}]}),
        delta({}, "tool_calls"),
    ),
    "choices that are a string": (chunk("abc"),),  # type: ignore[arg-type]
    "a chunk that is a list": ([1, 2],),
}


@pytest.mark.parametrize("chunks", BAD_CHUNKS.values(), ids=BAD_CHUNKS)
async def test_chat_chunks_of_the_wrong_shape_fail_the_step_and_not_the_conversation(
    fake_openai, openai_client, chunks
):
    model = OpenAIChatModel(client=openai_client)
    conversation = await model.open_conversation(PROFILE)
    items = tuple(SSEEvent(c) for c in chunks)
    fake_openai.script("chat.completions.create", SSEReply(items, done=True))
    with pytest.raises(UpstreamError) as raised:
        await step(model, conversation)
    assert_fault(raised)
    fake_openai.extensions["chat"].play(chat_reply("Recovered."))
    assert texts(await step(model, conversation)) == ["Recovered."]
    assert await model.history(conversation.id) == [
        Message(Role.USER, "hi"),
        Message(Role.ASSISTANT, "Recovered."),
    ]


# --- Assistants -----------------------------------------------------------------------------


@pytest.fixture
def assistants(fake_openai: Any) -> Any:
    state = fake_openai.extensions["assistants"]
    state.create_assistant({"model": "gpt-test"}, assistant_id="asst_remote")
    return state


@pytest.fixture
def assistants_model(openai_client: Any, assistants: Any) -> OpenAIAssistantsModel:
    return OpenAIAssistantsModel(client=openai_client, recovery_timeout=1.0)


@pytest.mark.parametrize("body", NOT_AN_OBJECT_WITH_AN_ID.values(), ids=NOT_AN_OBJECT_WITH_AN_ID)
async def test_assistants_a_created_thread_without_a_string_id_is_an_upstream_error(
    fake_openai, assistants, assistants_model, body
):
    fake_openai.script("threads.create", body)
    with pytest.raises(UpstreamError) as raised:
        await assistants_model.open_conversation(PROFILE)
    assert_fault(raised)
    assistants.play(assistants_reply("Still here."))
    conversation = await assistants_model.open_conversation(PROFILE)
    assert texts(await step(assistants_model, conversation)) == ["Still here."]


@pytest.mark.parametrize(
    "body",
    [
        JSONReply({"object": "thread", "metadata": {"assistant_id": "helper"}}),
        JSONReply({"id": "thread_x", "metadata": ["assistant_id"], "created_at": None}),
        RawReply(b"<html></html>", content_type="text/html"),
    ],
    ids=["no id", "metadata a list", "an HTML page"],
)
async def test_assistants_a_retrieved_thread_of_the_wrong_shape(
    fake_openai, assistants, assistants_model, body
):
    thread = assistants.create_thread({"assistant_id": "helper"})
    fake_openai.script("threads.retrieve", body)
    if body.__class__ is JSONReply and isinstance(body.body, dict) and "id" in body.body:
        # Only the metadata is odd: a thread with no assistant of ours, not an error.
        assert (await assistants_model.get_conversation(thread["id"])).assistant_id == ""
    else:
        with pytest.raises(UpstreamError) as raised:
            await assistants_model.get_conversation(thread["id"])
        assert_fault(raised)
    assert (await assistants_model.get_conversation(thread["id"])).assistant_id == "helper"


def _run_event(name: str, run: dict[str, Any]) -> SSEEvent:
    return SSEEvent(run, event=name)


def _requires_action(thread_id: str, tool_call: dict[str, Any]) -> SSEEvent:
    run = run_object(thread_id, "asst_remote", status="requires_action")
    run["required_action"] = {
        "type": "submit_tool_outputs",
        "submit_tool_outputs": {"tool_calls": [tool_call]},
    }
    return _run_event("thread.run.requires_action", run)


def _bad_run_streams(thread_id: str) -> dict[str, tuple[SSEEvent, ...]]:
    run = run_object(thread_id, "asst_remote")
    no_id = {k: v for k, v in run.items() if k != "id"}
    return {
        "a run created without an id": (_run_event("thread.run.created", no_id),),
        "a run completed with a numeric id": (
            _run_event("thread.run.completed", {**run, "id": 12, "status": "completed"}),
        ),
        "a tool call without an id": (
            _requires_action(
                thread_id, {"type": "function", "function": {"name": "x", "arguments": "{}"}}
            ),
        ),
        "a tool call whose arguments are an object": (
            _requires_action(
                thread_id,
                {"id": "call_1", "type": "function", "function": {"name": "x", "arguments": {}}},
            ),
        ),
        "a tool call without a function": (
            _requires_action(thread_id, {"id": "call_1", "type": "function"}),
        ),
    }


@pytest.mark.parametrize("case", list(_bad_run_streams("thread_0")))
async def test_assistants_a_run_stream_of_the_wrong_shape_fails_the_step_cleanly(
    fake_openai, assistants, assistants_model, case
):
    conversation = await assistants_model.open_conversation(PROFILE)
    items = _bad_run_streams(conversation.id)[case]
    fake_openai.script("runs.create", SSEReply(items))
    with pytest.raises(UpstreamError) as raised:
        await step(assistants_model, conversation)
    assert_fault(raised)
    assistants.play(assistants_reply("Recovered."))
    events = await step(assistants_model, conversation)
    assert texts(events) == ["Recovered."]
    assert not [e for e in events if isinstance(e, ModelToolCall)]


@pytest.mark.parametrize("body", NOT_A_PAGE.values(), ids=NOT_A_PAGE)
async def test_assistants_a_page_of_the_wrong_shape_is_an_upstream_error(
    fake_openai, assistants, openai_client, assistants_model, body
):
    conversation = await assistants_model.open_conversation(PROFILE)
    fake_openai.script("messages.list", body)
    with pytest.raises(UpstreamError) as raised:
        await assistants_model.history(conversation.id)
    assert_fault(raised)
    # A process that does not know the thread lists its runs before adding a message.
    stranger = OpenAIAssistantsModel(client=openai_client, recovery_timeout=1.0)
    fake_openai.script("runs.list", body)
    with pytest.raises(UpstreamError) as raised:
        await step(stranger, conversation)
    assert_fault(raised)
    assistants.play(assistants_reply("Recovered."))
    assert texts(await step(stranger, conversation)) == ["Recovered."]


# --- A whole JSON body where a stream was asked for -----------------------------------------

# Some proxies and servers ignore "stream": true and answer one JSON body (or an HTML page).
NOT_A_STREAM: dict[str, Any] = {
    "a JSON completion": JSONReply({"id": "x", "object": "response", "output": []}),
    "a JSON error with 200": JSONReply({"error": {"message": "no", "type": "server_error"}}),
    "an HTML page": RawReply(b"<html>proxy</html>", content_type="text/html"),
}


@pytest.mark.parametrize("body", NOT_A_STREAM.values(), ids=NOT_A_STREAM)
@pytest.mark.parametrize("backend", ["responses", "chat"])
async def test_a_body_that_is_not_an_event_stream_is_an_upstream_error(
    fake_openai, openai_client, backend, body
):
    if backend == "responses":
        model: Any = OpenAIResponsesModel(openai_client, state="local")
        operation = "responses.create"
    else:
        model = OpenAIChatModel(client=openai_client)
        operation = "chat.completions.create"
    conversation = await model.open_conversation(PROFILE)
    fake_openai.script(operation, body)
    with pytest.raises(UpstreamError) as raised:
        await step(model, conversation)
    assert_fault(raised)
    assert "not an event stream" in str(raised.value)
    if backend == "responses":
        fake_openai.responses.turn(t.text("Recovered."))
    else:
        fake_openai.extensions["chat"].play(chat_reply("Recovered."))
    assert texts(await step(model, conversation)) == ["Recovered."]
