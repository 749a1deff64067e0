"""The Responses adapter through the real ``openai`` SDK against the loopback fake."""

from __future__ import annotations

import json
from contextlib import aclosing

import pytest
import structlog

from assistant_service.adapters.config.memory import InMemoryConfigRepository
from assistant_service.adapters.llm.openai._client import make_openai_client
from assistant_service.adapters.llm.openai.responses._model import OpenAIResponsesModel
from assistant_service.adapters.state.memory import InMemoryStateStore
from assistant_service.adapters.tools import FunctionToolRegistry
from assistant_service.application.service import AssistantService
from assistant_service.domain.errors import (
    ConfigurationError,
    InvalidInputError,
    NotFoundError,
    RunLimitError,
    UpstreamError,
    UpstreamUnavailableError,
)
from assistant_service.domain.events import TextDelta
from assistant_service.domain.models import AssistantProfile, Message, Role, RunLimits, Usage
from assistant_service.domain.steps import (
    ModelMessage,
    ModelTextDelta,
    ModelToolCall,
    ModelUsage,
    ToolResults,
    UserInput,
)
from assistant_service.domain.tools import (
    INTERRUPTED_OUTPUT,
    OutcomeStatus,
    ToolCall,
    ToolOutcome,
    ToolSpec,
)
from fakeopenai import API_KEY, SSEReply, error_reply, event
from fakeopenai import turns as t
from fakeopenai.responses import normalize_items

pytestmark = pytest.mark.anyio

PROFILE = AssistantProfile(
    id="helper", model="gpt-test", instructions="Be brief.", temperature=0.3, tools=()
)
FORECAST = ToolSpec(
    "weather.get_forecast",
    "The forecast.",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)
STATES = ["conversations", "local"]


@pytest.fixture(params=STATES)
def state(request):
    return request.param


@pytest.fixture
def model(openai_client, state):
    return OpenAIResponsesModel(openai_client, state=state)


async def run_step(model, conversation, step, tools=(FORECAST,), profile=PROFILE):
    return [e async for e in model.stream_step(conversation, profile, step, tools)]


def bodies(fake):
    return [r.body for r in fake.requests_to("responses.create")]


def outcome(call, output='{"temp": 21}'):
    return ToolOutcome(call, OutcomeStatus.OK, output)


# --- text, tools, usage --------------------------------------------------------


async def test_text_streams_in_deltas_then_the_message_and_usage(fake_openai, model):
    conversation = await model.open_conversation(PROFILE)
    fake_openai.responses.turn(
        t.text("Hello there", deltas=["Hel", "lo ", "there"], input_tokens=30, output_tokens=4)
    )
    events = await run_step(model, conversation, UserInput("hi"))
    assert events == [
        ModelTextDelta("Hel"),
        ModelTextDelta("lo "),
        ModelTextDelta("there"),
        ModelMessage("Hello there"),
        ModelUsage(Usage(30, 4)),
    ]


async def test_the_request_carries_the_profile_and_wire_safe_tool_names(fake_openai, model, state):
    conversation = await model.open_conversation(PROFILE)
    fake_openai.responses.turn(t.text("ok"))
    await run_step(model, conversation, UserInput("hi"))
    [body] = bodies(fake_openai)
    assert body["model"] == "gpt-test"
    assert body["instructions"] == "Be brief."
    assert body["temperature"] == 0.3
    assert body["stream"] is True
    assert body["tools"] == [
        {
            "type": "function",
            "name": "weather__get_forecast",
            "description": "The forecast.",
            "parameters": FORECAST.parameters,
            "strict": True,
        }
    ]
    if state == "conversations":
        assert body["conversation"] == conversation.id
        assert body["input"][-1]["role"] == "user"
    else:
        assert body["store"] is False
        assert "conversation" not in body


async def test_several_tool_calls_with_arguments_in_pieces(fake_openai, model):
    conversation = await model.open_conversation(PROFILE)
    fake_openai.responses.turn(
        t.calls(
            t.call(
                "weather__get_forecast", '{"city": "Paris"}', pieces=['{"ci', 'ty": "Pa', 'ris"}']
            ),
            t.call("weather__get_forecast", '{"city": "Oslo"}', pieces=['{"city"', ': "Oslo"}']),
            text="Let me check.",
        )
    )
    events = await run_step(model, conversation, UserInput("weather?"))
    calls = [e.call for e in events if isinstance(e, ModelToolCall)]
    assert [(c.name, json.loads(c.arguments)) for c in calls] == [
        ("weather.get_forecast", {"city": "Paris"}),
        ("weather.get_forecast", {"city": "Oslo"}),
    ]
    assert ModelMessage("Let me check.") in events
    assert isinstance(events[-1], ModelUsage)


async def test_tool_outputs_continue_the_response(fake_openai, model, state):
    conversation = await model.open_conversation(PROFILE)
    fake_openai.responses.turn(
        t.calls(t.call("weather__get_forecast", '{"city": "Paris"}', call_id="call_1")),
        t.text("Sunny, 21 degrees."),
    )
    [call] = [
        e.call
        for e in await run_step(model, conversation, UserInput("weather?"))
        if isinstance(e, ModelToolCall)
    ]
    events = await run_step(model, conversation, ToolResults((outcome(call),)))
    assert ModelMessage("Sunny, 21 degrees.") in events
    sent = bodies(fake_openai)[1]["input"]
    assert sent[-1] == {
        "type": "function_call_output",
        "call_id": "call_1",
        "output": '{"temp": 21}',
    }
    if state == "local":
        # The whole conversation goes back: the user message, the call, then its output.
        assert [i["type"] for i in sent] == ["message", "function_call", "function_call_output"]
        assert sent[1]["name"] == "weather__get_forecast"
    else:
        assert len(sent) == 1


async def test_a_refusal_is_a_message_marked_as_one(fake_openai, model):
    conversation = await model.open_conversation(PROFILE)
    fake_openai.responses.turn(t.refusal("I can't help with that."))
    events = await run_step(model, conversation, UserInput("bad idea"))
    assert ModelMessage("I can't help with that.", refusal=True) in events
    assert (
        "".join(e.text for e in events if isinstance(e, ModelTextDelta))
        == "I can't help with that."
    )


# --- failures in the stream ----------------------------------------------------


async def test_response_failed_fails_the_step_with_its_reason(fake_openai, model):
    conversation = await model.open_conversation(PROFILE)
    fake_openai.responses.turn(t.text("partial", fail="the model crashed"))
    with pytest.raises(UpstreamError, match="the model crashed") as raised:
        await run_step(model, conversation, UserInput("hi"))
    assert not isinstance(raised.value, UpstreamUnavailableError)


async def test_an_error_event_fails_the_step(fake_openai, model):
    conversation = await model.open_conversation(PROFILE)
    fake_openai.responses.turn(t.text("partial", error="overloaded somewhere"))
    with pytest.raises(UpstreamError, match="overloaded somewhere"):
        await run_step(model, conversation, UserInput("hi"))


async def test_an_error_object_in_the_stream_fails_the_step(fake_openai, model):
    # Some compatible servers send {"error": {...}}; the SDK raises APIError for it.
    conversation = await model.open_conversation(PROFILE)
    fake_openai.script(
        "responses.create",
        SSEReply((event("response.created"), event("error", error={"message": "quota gone"}))),
    )
    with pytest.raises(UpstreamError, match="quota gone"):
        await run_step(model, conversation, UserInput("hi"))


async def test_a_dropped_connection_mid_stream_fails_cleanly_and_the_next_turn_works(
    fake_openai, model
):
    conversation = await model.open_conversation(PROFILE)
    fake_openai.responses.turn(t.text("one two three four", drop_after=6), t.text("fine"))
    received = []

    async def consume():
        async for e in model.stream_step(conversation, PROFILE, UserInput("hi"), ()):
            received.append(e)  # noqa: PERF401 -- kept as they come, up to the failure

    with pytest.raises(UpstreamUnavailableError, match="connection"):
        await consume()
    assert ModelTextDelta("one ") in received  # it failed after streaming began
    assert ModelMessage("fine") in await run_step(model, conversation, UserInput("again"))
    assert [m.text for m in await model.history(conversation.id)] == ["again", "fine"]


async def test_a_malformed_event_is_logged_and_fails_the_step(fake_openai, model):
    conversation = await model.open_conversation(PROFILE)
    fake_openai.responses.turn(t.text("a b c", malformed_after=5), t.text("fine"))
    with structlog.testing.capture_logs() as logs, pytest.raises(UpstreamError, match="malformed"):
        await run_step(model, conversation, UserInput("hi"))
    assert "llm.malformed_event" in [entry["event"] for entry in logs]
    assert ModelMessage("fine") in await run_step(model, conversation, UserInput("again"))


async def test_an_event_missing_its_fields_fails_the_step(fake_openai, model):
    conversation = await model.open_conversation(PROFILE)
    fake_openai.script(
        "responses.create",
        SSEReply((event("response.created"), event("response.output_text.delta"))),
    )
    with pytest.raises(UpstreamError, match="malformed|without"):
        await run_step(model, conversation, UserInput("hi"))


async def test_a_stream_that_ends_before_the_response_completes_fails(fake_openai, model):
    conversation = await model.open_conversation(PROFILE)
    # created, in_progress, item added, part added, one text delta: then the stream ends
    fake_openai.responses.turn(t.text("x y", deltas=["x ", "y"], end_after=5))
    with pytest.raises(UpstreamUnavailableError, match="ended before"):
        await run_step(model, conversation, UserInput("hi"))


# --- HTTP errors, retries, timeouts --------------------------------------------


async def test_429_becomes_unavailable_with_retry_after(fake_openai, model):
    conversation = await model.open_conversation(PROFILE)
    fake_openai.script(
        "responses.create", error_reply(429, "Rate limit reached", headers={"retry-after": "7"})
    )
    with pytest.raises(UpstreamUnavailableError) as raised:
        await run_step(model, conversation, UserInput("hi"))
    assert raised.value.retry_after == 7.0
    assert "Rate limit reached" in raised.value.message
    assert len(fake_openai.requests_to("responses.create")) == 1  # max_retries=0


async def test_503_with_retry_after_ms_becomes_unavailable(fake_openai, model):
    conversation = await model.open_conversation(PROFILE)
    fake_openai.script(
        "responses.create", error_reply(503, "busy", headers={"retry-after-ms": "1500"})
    )
    with pytest.raises(UpstreamUnavailableError) as raised:
        await run_step(model, conversation, UserInput("hi"))
    assert raised.value.retry_after == 1.5


async def retrying_model(fake_openai, state, retries):
    client = make_openai_client(api_key=API_KEY, base_url=fake_openai.base_url, max_retries=retries)
    return client, OpenAIResponsesModel(client, state=state)


async def test_the_sdk_retries_429_before_the_stream_starts(fake_openai, state):
    client, model = await retrying_model(fake_openai, state, retries=2)
    async with client:
        conversation = await model.open_conversation(PROFILE)
        quick = {"retry-after-ms": "5"}
        fake_openai.script(
            "responses.create",
            error_reply(429, "slow", headers=quick),
            error_reply(429, "slow", headers=quick),
        )
        fake_openai.responses.turn(t.text("at last"))
        assert ModelMessage("at last") in await run_step(model, conversation, UserInput("hi"))
    assert len(fake_openai.requests_to("responses.create")) == 3


async def test_500_is_retried_then_becomes_an_upstream_error(fake_openai, state):
    client, model = await retrying_model(fake_openai, state, retries=1)
    async with client:
        conversation = await model.open_conversation(PROFILE)
        quick = {"retry-after-ms": "5"}
        fake_openai.script(
            "responses.create",
            error_reply(500, "boom", headers=quick),
            error_reply(500, "boom", headers=quick),
        )
        with pytest.raises(UpstreamError, match="500") as raised:
            await run_step(model, conversation, UserInput("hi"))
    assert not isinstance(raised.value, UpstreamUnavailableError)
    assert len(fake_openai.requests_to("responses.create")) == 2


async def test_a_slow_response_hits_the_timeout(openai_transport, fake_openai, state):
    client = make_openai_client(
        transport=openai_transport,
        api_key=API_KEY,
        base_url=fake_openai.base_url,
        max_retries=0,
        timeout=0.2,
    )
    async with client:
        model = OpenAIResponsesModel(client, state=state)
        conversation = await model.open_conversation(PROFILE)
        fake_openai.responses.turn(t.text("too late", pause=1.0))
        with pytest.raises(UpstreamUnavailableError, match="in time"):
            await run_step(model, conversation, UserInput("hi"))


async def test_an_unreachable_server_is_unavailable(openai_transport, state):
    client = make_openai_client(
        transport=openai_transport, api_key=API_KEY, base_url="http://127.0.0.1:9/v1", max_retries=0
    )
    async with client:
        model = OpenAIResponsesModel(client, state="conversations")
        with pytest.raises(UpstreamUnavailableError, match="reach"):
            await model.open_conversation(PROFILE)


async def test_an_authentication_error_never_echoes_the_key(fake_openai, model):
    conversation = await model.open_conversation(PROFILE)
    fake_openai.script(
        "responses.create", error_reply(401, f"Incorrect API key provided: {API_KEY}.")
    )
    with pytest.raises(UpstreamError) as raised:
        await run_step(model, conversation, UserInput("hi"))
    assert API_KEY not in str(raised.value)
    assert "401" in str(raised.value)


# --- correlation id --------------------------------------------------------------


async def test_the_correlation_id_goes_upstream_and_into_the_log(fake_openai, model):
    with structlog.contextvars.bound_contextvars(correlation_id="corr-123"):
        conversation = await model.open_conversation(PROFILE)
        fake_openai.responses.turn(t.text("ok"))
        with structlog.testing.capture_logs() as logs:
            await run_step(model, conversation, UserInput("hi"))
    assert all(r.headers.get("x-client-request-id") == "corr-123" for r in fake_openai.requests)
    calls = [entry for entry in logs if entry["event"] == "openai.call"]
    assert calls
    assert {entry["correlation_id"] for entry in calls} == {"corr-123"}


async def test_no_correlation_header_when_none_is_bound(fake_openai, model):
    conversation = await model.open_conversation(PROFILE)
    fake_openai.responses.turn(t.text("ok"))
    await run_step(model, conversation, UserInput("hi"))
    assert all("x-client-request-id" not in r.headers for r in fake_openai.requests)


# --- conversations, history, repair --------------------------------------------


async def test_an_unknown_conversation_is_not_found(model, state):
    missing = "conv_does_not_exist" if state == "conversations" else "conv_local_missing"
    with pytest.raises(NotFoundError):
        await model.get_conversation(missing)


async def test_a_conversation_is_found_again_by_a_fresh_adapter(fake_openai, openai_client):
    first = OpenAIResponsesModel(openai_client)
    opened = await first.open_conversation(PROFILE, {"channel": "slack"})
    found = await OpenAIResponsesModel(openai_client).get_conversation(opened.id)
    assert found == opened
    assert fake_openai.responses.conversations[opened.id].metadata == {
        "channel": "slack",
        "assistant_id": "helper",
    }


async def test_a_conversation_without_an_assistant_is_not_ours(fake_openai, openai_client):
    foreign = fake_openai.responses.add_conversation({"owner": "someone else"})
    with pytest.raises(NotFoundError):
        await OpenAIResponsesModel(openai_client).get_conversation(foreign.id)


async def test_history_lists_user_and_assistant_messages_in_order(fake_openai, model):
    conversation = await model.open_conversation(PROFILE)
    fake_openai.responses.turn(
        t.text("Hi!"),
        t.calls(t.call("weather__get_forecast", '{"city": "Rome"}')),
        t.text("Warm."),
    )
    await run_step(model, conversation, UserInput("hello"))
    events = await run_step(model, conversation, UserInput("weather in Rome?"))
    [call] = [e.call for e in events if isinstance(e, ModelToolCall)]
    await run_step(model, conversation, ToolResults((outcome(call),)))
    assert await model.history(conversation.id) == [
        Message(Role.USER, "hello"),
        Message(Role.ASSISTANT, "Hi!"),
        Message(Role.USER, "weather in Rome?"),
        Message(Role.ASSISTANT, "Warm."),
    ]


async def test_interrupted_calls_are_answered_on_the_next_turn(fake_openai, model):
    conversation = await model.open_conversation(PROFILE)
    fake_openai.responses.turn(
        t.calls(
            t.call("weather__get_forecast", call_id="call_a"),
            t.call("weather__get_forecast", call_id="call_b"),
        ),
        t.text("Sorry, where were we?"),
    )
    await run_step(model, conversation, UserInput("weather?"))
    # The run died here: no tool outputs went back.
    events = await run_step(model, conversation, UserInput("hello?"))
    assert ModelMessage("Sorry, where were we?") in events
    sent = bodies(fake_openai)[1]["input"]
    repairs = [i for i in sent if i["type"] == "function_call_output"]
    assert [(r["call_id"], r["output"]) for r in repairs] == [
        ("call_a", INTERRUPTED_OUTPUT),
        ("call_b", INTERRUPTED_OUTPUT),
    ]
    assert sent[-1]["role"] == "user"
    assert len(fake_openai.requests_to("responses.create")) == 2  # no failed attempt first


async def test_calls_interrupted_in_another_process_are_found_and_answered(
    fake_openai, openai_client
):
    before_restart = OpenAIResponsesModel(openai_client)
    conversation = await before_restart.open_conversation(PROFILE)
    fake_openai.responses.turn(
        t.calls(t.call("weather__get_forecast", call_id="call_lost")), t.text("Back again.")
    )
    await run_step(before_restart, conversation, UserInput("weather?"))

    after_restart = OpenAIResponsesModel(openai_client)
    found = await after_restart.get_conversation(conversation.id)
    events = await run_step(after_restart, found, UserInput("still there?"))
    assert ModelMessage("Back again.") in events
    routes = [r.route for r in fake_openai.requests[-3:]]
    assert routes == ["responses.create", "conversations.items.list", "responses.create"]
    assert bodies(fake_openai)[-1]["input"][0] == {
        "type": "function_call_output",
        "call_id": "call_lost",
        "output": INTERRUPTED_OUTPUT,
    }


async def test_a_400_with_nothing_to_repair_is_an_upstream_error(fake_openai, openai_client):
    model = OpenAIResponsesModel(openai_client)
    conversation = await model.open_conversation(PROFILE)
    fake_openai.script("responses.create", error_reply(400, "Invalid schema for function"))
    with pytest.raises(UpstreamError, match="Invalid schema"):
        await run_step(model, conversation, UserInput("hi"))
    assert len(fake_openai.requests_to("responses.create")) == 1


async def test_local_state_lives_in_the_given_store(fake_openai, openai_client):
    store = InMemoryStateStore()
    model = OpenAIResponsesModel(openai_client, state="local", store=store)
    conversation = await model.open_conversation(PROFILE, {"k": "v"})
    assert conversation.id.startswith("conv_local_")
    assert await store.get(conversation.id) == conversation
    fake_openai.responses.turn(t.text("stored"))
    await run_step(model, conversation, UserInput("hi"))
    assert [i["role"] for i in await store.items(conversation.id)] == ["user", "assistant"]
    assert fake_openai.requests_to("conversations.create") == []


async def test_an_unknown_state_mode_is_a_configuration_error(openai_client):
    with pytest.raises(ConfigurationError, match="nowhere"):
        OpenAIResponsesModel(openai_client, state="nowhere")


# --- the facade ------------------------------------------------------------------


def get_forecast(city: str) -> dict[str, object]:
    """The forecast for a city.

    Args:
        city: The city.
    """
    return {"city": city, "sky": "clear"}


async def test_a_full_service_run_with_a_tool_round(fake_openai, model):
    registry = FunctionToolRegistry()
    registry.register(get_forecast, namespace="weather")
    profile = AssistantProfile(id="helper", model="gpt-test", tools=("weather.get_forecast",))
    service = AssistantService(
        model=model,
        state=InMemoryStateStore(),
        configs=InMemoryConfigRepository.of(profile),
        tools=registry,
        default_assistant_id="helper",
    )
    fake_openai.responses.turn(
        t.calls(t.call("weather__get_forecast", '{"city": "Lyon"}', call_id="call_w")),
        t.text("Clear skies in Lyon."),
    )
    conversation_id = await service.start_conversation()
    result = await service.chat(conversation_id, "Weather in Lyon?")
    assert result.texts == ["Clear skies in Lyon."]
    assert result.tool_outcomes[0].ok
    assert json.loads(result.tool_outcomes[0].output) == {"city": "Lyon", "sky": "clear"}
    assert result.usage == Usage(24, 14)
    sent = bodies(fake_openai)[1]["input"][-1]
    assert sent["call_id"] == "call_w"
    assert json.loads(sent["output"]) == {"city": "Lyon", "sky": "clear"}
    history = await service.history(conversation_id)
    assert history[-1] == Message(Role.ASSISTANT, "Clear skies in Lyon.")


def limited_service(model, rounds=1):
    registry = FunctionToolRegistry()
    registry.register(get_forecast, namespace="weather")
    profile = AssistantProfile(
        id="helper",
        model="gpt-test",
        tools=("weather.get_forecast",),
        limits=RunLimits(max_tool_rounds=rounds),
    )
    return AssistantService(
        model=model,
        state=InMemoryStateStore(),
        configs=InMemoryConfigRepository.of(profile),
        tools=registry,
        default_assistant_id="helper",
    )


async def test_a_run_over_its_tool_limit_leaves_calls_the_next_run_repairs(fake_openai, model):
    service = limited_service(model, rounds=1)
    forecast = t.call("weather__get_forecast", '{"city": "Oslo"}')
    fake_openai.responses.turn(
        t.calls(forecast),
        t.calls(t.call("weather__get_forecast", '{"city": "Oslo"}', call_id="call_over")),
        t.text("Cold in Oslo."),
    )
    conversation_id = await service.start_conversation()
    with pytest.raises(RunLimitError):
        await service.chat(conversation_id, "Weather in Oslo?")
    result = await service.chat(conversation_id, "So?")
    assert result.texts == ["Cold in Oslo."]
    repair = bodies(fake_openai)[-1]["input"]
    assert {
        "type": "function_call_output",
        "call_id": "call_over",
        "output": INTERRUPTED_OUTPUT,
    } in repair


async def test_a_client_that_stops_reading_leaves_the_conversation_usable(fake_openai, model):
    service = limited_service(model)
    fake_openai.responses.turn(
        t.text("a long answer that nobody reads", pause=0.01), t.text("Short.")
    )
    conversation_id = await service.start_conversation()
    async with aclosing(service.stream(conversation_id, "Tell me everything")) as events:
        async for received in events:
            if isinstance(received, TextDelta):
                break
    result = await service.chat(conversation_id, "Short version?")
    assert result.texts == ["Short."]


async def test_history_pages_through_long_conversations(fake_openai, openai_client):
    model = OpenAIResponsesModel(openai_client)
    conversation = await model.open_conversation(PROFILE)
    stored = fake_openai.responses.conversations[conversation.id].items
    for n in range(130):
        role = "user" if n % 2 == 0 else "assistant"
        part = "input_text" if role == "user" else "output_text"
        item = {"id": f"msg_{n:03}", "role": role, "content": [{"type": part, "text": str(n)}]}
        stored.extend(normalize_items([item]))
    history = await model.history(conversation.id)
    assert [m.text for m in history] == [str(n) for n in range(130)]
    assert len(fake_openai.requests_to("conversations.items.list")) == 2


# --- servers that send fewer events ----------------------------------------------


async def test_a_server_sending_only_the_completed_response_still_works(fake_openai, model):
    conversation = await model.open_conversation(PROFILE)
    output = [
        {
            "type": "message",
            "id": "msg_1",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "Done."}],
        },
        {
            "type": "function_call",
            "id": "fc_1",
            "call_id": "call_9",
            "name": "weather__get_forecast",
            "arguments": '{"city": "Nice"}',
        },
    ]
    usage = {"input_tokens": 5, "output_tokens": 3}
    fake_openai.script(
        "responses.create",
        SSEReply(
            (
                event(
                    "response.completed",
                    response={"id": "r", "status": "completed", "output": output, "usage": usage},
                ),
            )
        ),
    )
    events = await run_step(model, conversation, UserInput("hi"))
    assert events == [
        ModelMessage("Done."),
        ModelToolCall(ToolCall("call_9", "weather.get_forecast", '{"city": "Nice"}')),
        ModelUsage(Usage(5, 3)),
    ]


async def test_items_streamed_but_never_finished_are_completed_at_the_end(fake_openai, model):
    conversation = await model.open_conversation(PROFILE)
    announced = {
        "type": "function_call",
        "id": "fc_7",
        "call_id": "call_7",
        "name": "weather__get_forecast",
        "arguments": "",
    }
    fake_openai.script(
        "responses.create",
        SSEReply(
            (
                event("response.output_text.delta", item_id="msg_7", delta="Checking "),
                event("response.output_text.delta", item_id="msg_7", delta="now."),
                event("response.output_item.added", output_index=1, item=announced),
                event("response.function_call_arguments.delta", item_id="fc_7", delta='{"city": '),
                event("response.function_call_arguments.delta", item_id="fc_7", delta='"Bern"}'),
                event(
                    "response.completed", response={"id": "r", "status": "completed", "output": []}
                ),
            )
        ),
    )
    events = await run_step(model, conversation, UserInput("hi"))
    assert ModelToolCall(ToolCall("call_7", "weather.get_forecast", '{"city": "Bern"}')) in events
    assert ModelMessage("Checking now.") in events


async def test_an_incomplete_response_ends_the_step_with_what_came(fake_openai, model):
    conversation = await model.open_conversation(PROFILE)
    message = {
        "type": "message",
        "id": "m",
        "role": "assistant",
        "content": [{"type": "output_text", "text": "Cut sh"}],
    }
    fake_openai.script(
        "responses.create",
        SSEReply(
            (
                event("response.output_item.done", output_index=0, item=message),
                event(
                    "response.incomplete",
                    response={"id": "r", "status": "incomplete", "output": [message]},
                ),
            )
        ),
    )
    assert await run_step(model, conversation, UserInput("hi")) == [ModelMessage("Cut sh")]


async def test_a_response_failed_for_rate_limits_is_unavailable(fake_openai, model):
    conversation = await model.open_conversation(PROFILE)
    fake_openai.responses.turn(t.Turn(fail="slow down", fail_code="rate_limit_exceeded"))
    with pytest.raises(UpstreamUnavailableError, match="slow down"):
        await run_step(model, conversation, UserInput("hi"))


@pytest.mark.parametrize(
    "metadata",
    [{f"k{n}": "v" for n in range(16)}, {"k" * 65: "v"}, {"k": "v" * 513}],
)
async def test_metadata_over_the_conversations_limits_is_refused_up_front(
    fake_openai, openai_client, metadata
):
    model = OpenAIResponsesModel(openai_client)
    with pytest.raises(InvalidInputError) as raised:
        await model.open_conversation(PROFILE, metadata)
    assert "metadata" in raised.value.fields
    assert fake_openai.requests == []


async def test_a_step_is_bounded_in_events_and_in_time_as_on_every_backend(
    fake_openai, openai_client, state
):
    fake_openai.responses.turn(t.text("a b c d", deltas=["a ", "b ", "c ", "d"]))
    chatty = OpenAIResponsesModel(openai_client, state=state, max_step_events=3)
    conversation = await chatty.open_conversation(PROFILE)
    with pytest.raises(UpstreamError, match="more than 3 events"):
        await run_step(chatty, conversation, UserInput("hi"))
    fake_openai.responses.turn(t.text("slow words", pause=0.1))
    slow = OpenAIResponsesModel(openai_client, state=state, step_timeout=0.05)
    conversation = await slow.open_conversation(PROFILE)
    with pytest.raises(UpstreamError, match="longer than 0.05 s"):
        await run_step(slow, conversation, UserInput("hi"))
