"""The Chat Completions adapter through the real SDK against the loopback fake server."""

from __future__ import annotations

from contextlib import aclosing

import openai
import pytest
import structlog

from assistant_service.adapters.config.memory import InMemoryConfigRepository
from assistant_service.adapters.llm.openai._client import make_openai_client
from assistant_service.adapters.llm.openai.chat._model import OpenAIChatModel
from assistant_service.adapters.state.memory import InMemoryStateStore
from assistant_service.adapters.tools import FunctionToolRegistry
from assistant_service.application.breaker_model import CircuitBreakerModel
from assistant_service.application.service import AssistantService
from assistant_service.domain.errors import NotFoundError, UpstreamError, UpstreamUnavailableError
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
from assistant_service.entrypoints.composition import services_from_settings
from assistant_service.entrypoints.settings import SettingsError, load_settings
from fakeopenai import API_KEY, SSEEvent, SSEReply, error_reply
from fakeopenai.chat import ChatStep, chat_calls, chat_reply

pytestmark = pytest.mark.anyio

FORECAST = ToolSpec(
    "weather.get_forecast",
    "The forecast for a city.",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)
PROFILE = AssistantProfile(
    id="helper", model="llama-test", instructions="Be brief.", tools=(FORECAST.name,)
)


@pytest.fixture
def chat(fake_openai):
    return fake_openai.extensions["chat"]


@pytest.fixture
def store():
    return InMemoryStateStore()


@pytest.fixture
def model(openai_client, store):
    return OpenAIChatModel(client=openai_client, store=store)


async def step(model, conversation, step_input, tools=(FORECAST,)):
    async with aclosing(model.stream_step(conversation, PROFILE, step_input, tools)) as events:
        return [event async for event in events]


def sent(fake):
    return [request.body for request in fake.requests_to("chat.completions.create")]


async def test_a_text_answer_streams_and_is_stored(fake_openai, chat, model, store):
    chat.play(chat_reply("Hello there", deltas=("Hel", "lo there"), usage=(9, 2)))
    conversation = await model.open_conversation(PROFILE, {"team": "blue"})
    events = await step(model, conversation, UserInput("hi"))
    assert events == [
        ModelTextDelta("Hel"),
        ModelTextDelta("lo there"),
        ModelMessage("Hello there"),
        ModelUsage(Usage(9, 2)),
    ]
    [body] = sent(fake_openai)
    assert body["model"] == "llama-test"
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hi"},
    ]
    assert body["tools"][0]["function"]["name"] == "weather__get_forecast"
    # The system message is sent, never stored.
    assert await store.items(conversation.id) == [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "Hello there"},
    ]
    assert await model.history(conversation.id) == [
        Message(Role.USER, "hi"),
        Message(Role.ASSISTANT, "Hello there"),
    ]
    assert (await model.get_conversation(conversation.id)).metadata == {"team": "blue"}


async def test_tool_calls_are_assembled_from_pieces_and_answered(fake_openai, chat, model, store):
    chat.play(
        chat_calls(
            ("call_a", "weather__get_forecast", '{"city": "Paris"}'),
            ("call_b", "weather__get_forecast", '{"city": "Oslo"}'),
            text="Let me look.",
            argument_pieces=4,
        ),
        chat_reply("Sunny and snowy."),
    )
    conversation = await model.open_conversation(PROFILE)
    first = await step(model, conversation, UserInput("weather?"))
    paris = ToolCall("call_a", "weather.get_forecast", '{"city": "Paris"}')
    oslo = ToolCall("call_b", "weather.get_forecast", '{"city": "Oslo"}')
    assert first[-4:] == [
        ModelMessage("Let me look."),
        ModelToolCall(paris),
        ModelToolCall(oslo),
        ModelUsage(Usage(11, 6)),
    ]
    outcomes = (
        ToolOutcome(paris, OutcomeStatus.OK, "sunny"),
        ToolOutcome(oslo, OutcomeStatus.OK, "snow"),
    )
    assert ModelMessage("Sunny and snowy.") in await step(
        model, conversation, ToolResults(outcomes)
    )
    assistant_call = {
        "role": "assistant",
        "content": "Let me look.",
        "tool_calls": [
            {
                "id": "call_a",
                "type": "function",
                "function": {"name": "weather__get_forecast", "arguments": '{"city": "Paris"}'},
            },
            {
                "id": "call_b",
                "type": "function",
                "function": {"name": "weather__get_forecast", "arguments": '{"city": "Oslo"}'},
            },
        ],
    }
    replies = [
        {"role": "tool", "tool_call_id": "call_a", "content": "sunny"},
        {"role": "tool", "tool_call_id": "call_b", "content": "snow"},
    ]
    assert sent(fake_openai)[1]["messages"][1:] == [
        {"role": "user", "content": "weather?"},
        assistant_call,
        *replies,
    ]
    assert (await store.items(conversation.id))[1:] == [
        assistant_call,
        *replies,
        {"role": "assistant", "content": "Sunny and snowy."},
    ]


async def test_calls_without_ids_get_ids_their_replies_refer_to(fake_openai, chat, model):
    chat.play(
        chat_calls(("ignored", "weather__get_forecast", "{}"), omit_ids=True), chat_reply("k")
    )
    conversation = await model.open_conversation(PROFILE)
    [call_event] = [
        e for e in await step(model, conversation, UserInput("x")) if isinstance(e, ModelToolCall)
    ]
    call_id = call_event.call.id
    assert call_id.startswith("call_")
    outcome = ToolOutcome(call_event.call, OutcomeStatus.OK, "done")
    await step(model, conversation, ToolResults((outcome,)))
    messages = sent(fake_openai)[1]["messages"]
    assert messages[-2]["tool_calls"][0]["id"] == call_id
    assert messages[-1] == {"role": "tool", "tool_call_id": call_id, "content": "done"}


async def test_calls_left_unanswered_are_answered_as_interrupted(fake_openai, chat, model):
    chat.play(chat_calls(("call_z", "weather__get_forecast", "{}")), chat_reply("Hi again"))
    conversation = await model.open_conversation(PROFILE)
    await step(model, conversation, UserInput("weather?"))  # the run died before the tool ran
    assert ModelMessage("Hi again") in await step(model, conversation, UserInput("hello"))
    assert sent(fake_openai)[1]["messages"][-2:] == [
        {"role": "tool", "tool_call_id": "call_z", "content": INTERRUPTED_OUTPUT},
        {"role": "user", "content": "hello"},
    ]


async def test_a_history_trimmed_by_the_store_never_sends_an_orphan_tool_reply(
    fake_openai, chat, openai_client
):
    store = InMemoryStateStore(max_items=2)
    model = OpenAIChatModel(client=openai_client, store=store)
    chat.play(
        chat_calls(("c1", "weather__get_forecast", "{}")), chat_reply("one"), chat_reply("two")
    )
    conversation = await model.open_conversation(PROFILE)
    calls = await step(model, conversation, UserInput("q1"))
    call = next(e.call for e in calls if isinstance(e, ModelToolCall))
    await step(model, conversation, ToolResults((ToolOutcome(call, OutcomeStatus.OK, "r"),)))
    # The store kept [tool reply, "one"]: the assistant call it answers was dropped.
    assert [item["role"] for item in await store.items(conversation.id)] == ["tool", "assistant"]
    await step(model, conversation, UserInput("q2"))
    assert sent(fake_openai)[2]["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "q2"},
    ]


async def test_usage_can_be_left_out_for_servers_that_reject_stream_options(
    fake_openai, chat, openai_client
):
    chat.reject_stream_options = True
    chat.play(chat_reply("fine"))
    conversation_model = OpenAIChatModel(client=openai_client)
    conversation = await conversation_model.open_conversation(PROFILE)
    with pytest.raises(UpstreamError, match="400.*stream_options"):
        await step(conversation_model, conversation, UserInput("hi"))
    quiet = OpenAIChatModel(client=openai_client, include_usage=False)
    conversation = await quiet.open_conversation(PROFILE)
    events = await step(quiet, conversation, UserInput("hi"))
    assert events[-2:] == [ModelMessage("fine"), ModelUsage(Usage())]
    assert "stream_options" not in sent(fake_openai)[-1]


async def test_the_service_runs_tools_over_chat_completions(openai_transport, fake_openai, chat):
    def get_forecast(city: str) -> str:
        """The forecast for a city."""
        return f"sunny in {city}"

    registry = FunctionToolRegistry()
    registry.register(get_forecast, namespace="weather")
    chat.play(chat_calls(("c1", "weather__get_forecast", '{"city": "Rome"}')), chat_reply("Sunny."))
    client = make_openai_client(
        transport=openai_transport, api_key=API_KEY, base_url=fake_openai.base_url, max_retries=0
    )
    async with client:
        state = InMemoryStateStore()
        service = AssistantService(
            model=OpenAIChatModel(client=client, store=state),
            state=state,
            configs=InMemoryConfigRepository.of(PROFILE),
            tools=registry,
            default_assistant_id="helper",
        )
        conversation_id = await service.start_conversation()
        result = await service.chat(conversation_id, "Rome?")
        history = await service.history(conversation_id)
    assert result.texts == ["Sunny."]
    assert result.usage == Usage(22, 12)
    assert sent(fake_openai)[1]["messages"][-1] == {
        "role": "tool",
        "tool_call_id": "c1",
        "content": "sunny in Rome",
    }
    assert history == [Message(Role.USER, "Rome?"), Message(Role.ASSISTANT, "Sunny.")]


async def test_an_unknown_conversation_is_not_found(model):
    with pytest.raises(NotFoundError):
        await model.get_conversation("chat_nope")
    with pytest.raises(NotFoundError):
        await model.history("chat_nope")


async def test_a_429_before_the_stream_is_unavailable_with_retry_after(fake_openai, model):
    conversation = await model.open_conversation(PROFILE)
    fake_openai.script(
        "chat.completions.create", error_reply(429, "slow down", headers={"retry-after": "3"})
    )
    with pytest.raises(UpstreamUnavailableError) as raised:
        await step(model, conversation, UserInput("hi"))
    assert raised.value.retry_after == 3.0


async def test_a_500_before_the_stream_is_retried_by_the_sdk(openai_transport, fake_openai, chat):
    chat.play(chat_reply("made it"))
    fake_openai.script(
        "chat.completions.create", error_reply(500, "oops", headers={"retry-after-ms": "1"})
    )
    client = make_openai_client(
        transport=openai_transport, api_key=API_KEY, base_url=fake_openai.base_url, max_retries=1
    )
    async with client:
        model = OpenAIChatModel(client=client)
        conversation = await model.open_conversation(PROFILE)
        assert ModelMessage("made it") in await step(model, conversation, UserInput("hi"))
    assert len(sent(fake_openai)) == 2


async def test_a_slow_server_fails_the_step_after_the_timeout(openai_transport, fake_openai, chat):
    chat.play(ChatStep(text="late", delay=1.0), chat_reply("on time"))
    client = make_openai_client(
        transport=openai_transport,
        api_key=API_KEY,
        base_url=fake_openai.base_url,
        max_retries=0,
        timeout=0.2,
    )
    async with client:
        model = OpenAIChatModel(client=client)
        conversation = await model.open_conversation(PROFILE)
        with pytest.raises(UpstreamUnavailableError, match="in time"):
            await step(model, conversation, UserInput("hi"))
        assert ModelMessage("on time") in await step(model, conversation, UserInput("again"))


@pytest.mark.parametrize(
    ("broken", "error", "message"),
    [
        (
            ChatStep(text="a b c", deltas=("a ", "b ", "c"), drop_after=3),
            UpstreamUnavailableError,
            "connection",
        ),
        (
            ChatStep(text="a b", deltas=("a ", "b"), error="the model crashed"),
            UpstreamError,
            "crashed",
        ),
        (ChatStep(text="a b", deltas=("a ", "b"), malformed_after=2), UpstreamError, "malformed"),
        (ChatStep(text="a b", omit_finish=True), UpstreamError, "before the answer was finished"),
        (ChatStep(text="a b", finish_reason="content_filter"), UpstreamError, "content filter"),
        (ChatStep(text="a b", finish_reason="abort"), UpstreamError, "stopped without.*abort"),
    ],
)
async def test_a_stream_broken_after_it_began_fails_the_step_and_keeps_history(
    fake_openai, chat, model, store, broken, error, message
):
    chat.play(chat_reply("first"), broken, chat_reply("recovered"))
    conversation = await model.open_conversation(PROFILE)
    await step(model, conversation, UserInput("one"))
    before = await store.items(conversation.id)
    with pytest.raises(error, match=message):
        await step(model, conversation, UserInput("two"))
    assert await store.items(conversation.id) == before
    assert ModelMessage("recovered") in await step(model, conversation, UserInput("three"))
    assert sent(fake_openai)[2]["messages"][-1] == {"role": "user", "content": "three"}


async def test_a_malformed_chunk_is_logged(chat, model):
    chat.play(ChatStep(text="a", malformed_after=1))
    conversation = await model.open_conversation(PROFILE)
    with structlog.testing.capture_logs() as logs, pytest.raises(UpstreamError):
        await step(model, conversation, UserInput("hi"))
    [entry] = [e for e in logs if e["event"] == "llm.malformed_event"]
    assert entry["backend"] == "chat"
    assert entry["log_level"] == "error"


async def test_each_call_carries_and_logs_the_correlation_id(fake_openai, chat, model):
    chat.play(chat_reply("hi"))
    with (
        structlog.contextvars.bound_contextvars(correlation_id="corr-9"),
        structlog.testing.capture_logs() as logs,
    ):
        conversation = await model.open_conversation(PROFILE)
        await step(model, conversation, UserInput("hi"))
    [request] = fake_openai.requests_to("chat.completions.create")
    assert request.headers["x-client-request-id"] == "corr-9"
    [logged] = [e for e in logs if e["event"] == "openai.call"]
    assert (logged["operation"], logged["correlation_id"], logged["outcome"]) == (
        "chat.completions.create",
        "corr-9",
        "ok",
    )


async def test_the_round_limit_leaves_calls_that_the_next_turn_repairs(
    openai_transport, fake_openai, chat
):
    def ping() -> str:
        """Answer pong."""
        return "pong"

    registry = FunctionToolRegistry()
    registry.register(ping, namespace="t")
    profile = AssistantProfile(
        id="helper", model="m", tools=("t.ping",), limits=RunLimits(max_tool_rounds=1)
    )
    chat.play(
        chat_calls(("c1", "t__ping", "{}")), chat_calls(("c2", "t__ping", "{}")), chat_reply("ok")
    )
    client = make_openai_client(
        transport=openai_transport, api_key=API_KEY, base_url=fake_openai.base_url, max_retries=0
    )
    async with client:
        state = InMemoryStateStore()
        service = AssistantService(
            model=OpenAIChatModel(client=client, store=state),
            state=state,
            configs=InMemoryConfigRepository.of(profile),
            tools=registry,
            default_assistant_id="helper",
        )
        conversation_id = await service.start_conversation()
        with pytest.raises(Exception, match="more than 1 times"):
            await service.chat(conversation_id, "loop")
        result = await service.chat(conversation_id, "hello")
    assert result.texts == ["ok"]
    assert sent(fake_openai)[2]["messages"][-2:] == [
        {"role": "tool", "tool_call_id": "c2", "content": INTERRUPTED_OUTPUT},
        {"role": "user", "content": "hello"},
    ]


async def test_a_chunk_of_the_wrong_shape_fails_the_step_cleanly(fake_openai, model):
    broken = {"id": "x", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": 7}]}
    fake_openai.script("chat.completions.create", SSEReply((SSEEvent(broken),), done=True))
    conversation = await model.open_conversation(PROFILE)
    with structlog.testing.capture_logs() as logs, pytest.raises(UpstreamError, match="malformed"):
        await step(model, conversation, UserInput("hi"))
    assert [e["kind"] for e in logs if e["event"] == "llm.malformed_event"] == ["chunk"]


async def test_a_step_is_bounded_in_events_and_in_time(chat, openai_client):
    chat.play(chat_reply("a b c d", deltas=("a ", "b ", "c ", "d")), ChatStep(text="x", delay=0.1))
    chatty = OpenAIChatModel(client=openai_client, max_step_events=3)
    conversation = await chatty.open_conversation(PROFILE)
    with pytest.raises(UpstreamError, match="more than 3 events"):
        await step(chatty, conversation, UserInput("hi"))
    slow = OpenAIChatModel(client=openai_client, step_timeout=0.05)
    conversation = await slow.open_conversation(PROFILE)
    with pytest.raises(UpstreamError, match="longer than 0.05 s"):
        await step(slow, conversation, UserInput("hi"))


async def test_a_step_closed_early_is_logged_as_abandoned_and_stores_nothing(chat, model, store):
    chat.play(chat_reply("a b c", deltas=("a ", "b ", "c")))
    conversation = await model.open_conversation(PROFILE)
    with structlog.testing.capture_logs() as logs:
        async with aclosing(model.stream_step(conversation, PROFILE, UserInput("hi"), ())) as ev:
            assert await ev.__anext__() == ModelTextDelta("a ")
    assert [e["outcome"] for e in logs if e["event"] == "openai.call"] == ["abandoned"]
    assert await store.items(conversation.id) == []


async def test_settings_select_the_chat_adapter(fake_openai, chat):
    settings = load_settings(
        {
            "OPENAI_API_KEY": API_KEY,
            "OPENAI_BASE_URL": fake_openai.base_url,
            "LLM_BACKEND": "chat",
            "OPENAI_MAX_RETRIES": "0",
        }
    )
    services = await services_from_settings(settings)
    guarded = services.assistant._model
    (close_client,) = services.closers
    try:
        # The real backend, behind the circuit breaker.
        assert isinstance(guarded, CircuitBreakerModel)
        model = guarded.model
        assert isinstance(model, OpenAIChatModel)
        chat.play(chat_reply("Composed."))
        conversation_id = await services.assistant.start_conversation()
        assert (await services.assistant.chat(conversation_id, "hello")).texts == ["Composed."]
    finally:
        await close_client()


@pytest.mark.parametrize(
    ("setting", "on_aiohttp"), [({}, True), ({"OPENAI_TRANSPORT": "HTTPX"}, False)]
)
async def test_openai_transport_picks_the_sdks_http_client(fake_openai, chat, setting, on_aiohttp):
    settings = load_settings(
        {
            "OPENAI_API_KEY": API_KEY,
            "OPENAI_BASE_URL": fake_openai.base_url,
            "LLM_BACKEND": "chat",
            **setting,
        }
    )
    services = await services_from_settings(settings)
    (close_client,) = services.closers
    try:
        client = services.assistant._model.model._client
        # The SDK's own aiohttp client (its `aiohttp` extra), or its default httpx2 one.
        assert isinstance(client._client, openai.DefaultAioHttpClient) is on_aiohttp
        chat.play(chat_reply("Carried."))
        conversation_id = await services.assistant.start_conversation()
        assert (await services.assistant.chat(conversation_id, "hello")).texts == ["Carried."]
    finally:
        await close_client()


async def test_a_client_built_by_hand_keeps_the_sdks_transport_unless_asked():
    # aiohttp runs on asyncio only: an embedder on trio keeps working by default.
    clients = {
        transport: make_openai_client(api_key=API_KEY, **options)  # type: ignore[arg-type]
        for transport, options in {
            "default": {},
            "auto": {"transport": "auto"},
            "aiohttp": {"transport": "aiohttp"},
        }.items()
    }
    try:
        assert not isinstance(clients["default"]._client, openai.DefaultAioHttpClient)
        assert isinstance(clients["auto"]._client, openai.DefaultAioHttpClient)
        assert isinstance(clients["aiohttp"]._client, openai.DefaultAioHttpClient)
    finally:
        for client in clients.values():
            await client.close()


def test_an_unknown_transport_is_refused_by_name():
    with pytest.raises(
        SettingsError, match=r"OPENAI_TRANSPORT: expected one of auto\|httpx\|aiohttp"
    ):
        load_settings({"OPENAI_TRANSPORT": "requests"})
    with pytest.raises(ValueError, match="unknown transport"):
        make_openai_client(api_key=API_KEY, transport="requests")  # type: ignore[arg-type]


async def test_the_key_is_read_before_each_request_and_a_rotated_one_is_sent(
    openai_transport, fake_openai, chat
):
    keys = iter(["sk-first", "sk-rotated"])

    async def current_key() -> str:
        return next(keys)

    client = make_openai_client(
        transport=openai_transport,
        api_key=current_key,
        base_url=fake_openai.base_url,
        max_retries=0,
    )
    try:
        rotating = OpenAIChatModel(client=client)
        conversation = await rotating.open_conversation(PROFILE)
        chat.play(chat_reply("one"), chat_reply("two"))
        await step(rotating, conversation, UserInput("a"))
        await step(rotating, conversation, UserInput("b"))
    finally:
        await client.close()
    sent_keys = [
        r.headers["authorization"] for r in fake_openai.requests_to("chat.completions.create")
    ]
    assert sent_keys == ["Bearer sk-first", "Bearer sk-rotated"]


async def test_a_500_is_retried_by_the_sdk_with_the_same_body_and_the_key_read_again(
    openai_transport, fake_openai, chat
):
    keys = iter(["sk-first", "sk-second"])

    async def current_key() -> str:
        return next(keys)

    client = make_openai_client(
        transport=openai_transport,
        api_key=current_key,
        base_url=fake_openai.base_url,
        max_retries=1,
    )
    try:
        retrying = OpenAIChatModel(client=client)
        conversation = await retrying.open_conversation(PROFILE)
        fake_openai.script("chat.completions.create", error_reply(500, "boom"))
        chat.play(chat_reply("after the retry"))
        events = await step(retrying, conversation, UserInput("hi"))
    finally:
        await client.close()
    assert ModelMessage("after the retry") in events
    first, second = fake_openai.requests_to("chat.completions.create")
    assert first.body == second.body
    assert first.body["messages"][-1] == {"role": "user", "content": "hi"}
    assert [first.headers["authorization"], second.headers["authorization"]] == [
        "Bearer sk-first",
        "Bearer sk-second",
    ]
