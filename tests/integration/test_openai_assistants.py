"""The Assistants-API adapter through the real SDK against the loopback fake server."""

from __future__ import annotations

import json
from contextlib import aclosing

import pytest
import structlog

from assistant_service.adapters.config.memory import InMemoryConfigRepository
from assistant_service.adapters.llm.openai._client import make_openai_client
from assistant_service.adapters.llm.openai.assistants._model import OpenAIAssistantsModel
from assistant_service.adapters.state.memory import InMemoryStateStore
from assistant_service.adapters.tools import FunctionToolRegistry
from assistant_service.application.breaker_model import CircuitBreakerModel
from assistant_service.application.service import AssistantService
from assistant_service.domain.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    UpstreamError,
    UpstreamUnavailableError,
)
from assistant_service.domain.models import AssistantProfile, Message, Role, RunLimits, Usage
from assistant_service.domain.steps import (
    ModelMessage,
    ModelTextDelta,
    ModelToolCall,
    ModelUsage,
    ToolResults,
    UserInput,
)
from assistant_service.domain.tools import OutcomeStatus, ToolCall, ToolOutcome, ToolSpec
from assistant_service.entrypoints.composition import services_from_settings
from assistant_service.entrypoints.settings import load_settings
from fakeopenai import API_KEY, SSEEvent, SSEReply, error_reply
from fakeopenai.assistants import call, calls, ended, plant_run, reply
from fakeopenai.assistants_state import RunStep, message_object, run_object

pytestmark = pytest.mark.anyio

FORECAST = ToolSpec(
    "weather.get_forecast",
    "The forecast for a city.",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)
PROFILE = AssistantProfile(
    id="helper",
    model="gpt-test",
    instructions="Be brief.",
    tools=(FORECAST.name,),
    remote_id="asst_remote",
)


@pytest.fixture
def assistants(fake_openai):
    return fake_openai.extensions["assistants"]


@pytest.fixture(autouse=True)
def remote_assistants(fake_openai):
    """The remote assistants the tests' profiles name, as a server that knows them."""
    for assistant_id in ("asst_remote", "asst_1"):
        fake_openai.extensions["assistants"].create_assistant(
            {"model": "gpt-test"}, assistant_id=assistant_id
        )


@pytest.fixture
def model(openai_client):
    return OpenAIAssistantsModel(client=openai_client, recovery_timeout=1.0)


async def step(model, conversation, step_input, tools=(FORECAST,)):
    async with aclosing(model.stream_step(conversation, PROFILE, step_input, tools)) as events:
        return [event async for event in events]


def bodies(fake, route):
    return [request.body for request in fake.requests_to(route)]


async def test_a_conversation_is_a_thread_that_names_the_assistant(fake_openai, model):
    conversation = await model.open_conversation(PROFILE, {"team": "blue"})
    assert conversation.id.startswith("thread_")
    assert conversation.metadata == {"team": "blue"}
    [created] = bodies(fake_openai, "threads.create")
    assert created == {"metadata": {"team": "blue", "assistant_id": "helper"}}
    again = await model.get_conversation(conversation.id)
    assert (again.assistant_id, again.metadata) == ("helper", {"team": "blue"})


async def test_an_unknown_thread_is_not_found(model):
    with pytest.raises(NotFoundError, match="thread_nope"):
        await model.get_conversation("thread_nope")
    with pytest.raises(NotFoundError):
        await model.history("thread_nope")


async def test_a_profile_without_remote_assistant_is_an_upstream_error_saying_what_to_do(model):
    # Start-up pushes every profile it serves; one stored since is a 502, never a 500.
    with pytest.raises(UpstreamError, match="no remote_id.*assistants push"):
        await model.open_conversation(AssistantProfile(id="local", model="m"))


async def test_a_remote_assistant_the_server_forgot_is_an_upstream_error_not_a_404(
    fake_openai, assistants, model
):
    conversation = await model.open_conversation(PROFILE)
    del assistants.assistants["asst_remote"]
    with pytest.raises(UpstreamError, match="knows no assistant 'asst_remote'") as raised:
        await step(model, conversation, UserInput("hi"))
    assert not isinstance(raised.value, NotFoundError)


async def test_a_text_answer_streams_deltas_then_the_message_and_usage(
    fake_openai, assistants, model
):
    assistants.play(RunStep(text="Hello there", deltas=("Hel", "lo there"), usage=(30, 4)))
    conversation = await model.open_conversation(PROFILE)
    events = await step(model, conversation, UserInput("hi"))
    assert events == [
        ModelTextDelta("Hel"),
        ModelTextDelta("lo there"),
        ModelMessage("Hello there"),
        ModelUsage(Usage(30, 4)),
    ]
    assert bodies(fake_openai, "messages.create") == [{"role": "user", "content": "hi"}]
    [run] = bodies(fake_openai, "runs.create")
    assert run["assistant_id"] == "asst_remote"
    assert run["stream"] is True
    assert (run["model"], run["instructions"]) == ("gpt-test", "Be brief.")
    assert run["tools"][0]["function"]["name"] == "weather__get_forecast"
    assert await model.history(conversation.id) == [
        Message(Role.USER, "hi"),
        Message(Role.ASSISTANT, "Hello there"),
    ]


async def test_tool_outputs_continue_the_waiting_run(fake_openai, assistants, model):
    assistants.play(
        calls(
            call("weather__get_forecast", '{"city": "Paris"}', "call_a"),
            call("weather__get_forecast", '{"city": "Oslo"}', "call_b"),
        ),
        reply("Sunny in Paris, snow in Oslo."),
    )
    conversation = await model.open_conversation(PROFILE)
    first = await step(model, conversation, UserInput("weather?"))
    paris = ToolCall("call_a", "weather.get_forecast", '{"city": "Paris"}')
    oslo = ToolCall("call_b", "weather.get_forecast", '{"city": "Oslo"}')
    assert first == [ModelToolCall(paris), ModelToolCall(oslo)]

    outcomes = (
        ToolOutcome(paris, OutcomeStatus.OK, "sunny"),
        ToolOutcome(oslo, OutcomeStatus.OK, "snow"),
    )
    second = await step(model, conversation, ToolResults(outcomes))
    assert ModelMessage("Sunny in Paris, snow in Oslo.") in second
    [submitted] = fake_openai.requests_to("runs.submit_tool_outputs")
    run_id = assistants.runs[conversation.id][0]["id"]
    assert submitted.params == {"thread": conversation.id, "run": run_id}
    assert submitted.body == {
        "tool_outputs": [
            {"tool_call_id": "call_a", "output": "sunny"},
            {"tool_call_id": "call_b", "output": "snow"},
        ],
        "stream": True,
    }
    # A new thread has no run, and the waiting run was remembered: nothing was listed.
    assert not fake_openai.requests_to("runs.list")


async def test_the_service_runs_tools_through_the_assistants_backend(
    openai_transport, fake_openai, assistants
):
    def get_forecast(city: str) -> str:
        """The forecast for a city."""
        return f"sunny in {city}"

    registry = FunctionToolRegistry()
    registry.register(get_forecast, namespace="weather")
    assistants.play(
        calls(call("weather__get_forecast", json.dumps({"city": "Rome"}), "call_1")),
        reply("It is sunny in Rome."),
    )
    client = make_openai_client(
        transport=openai_transport, api_key=API_KEY, base_url=fake_openai.base_url, max_retries=0
    )
    async with client:
        service = AssistantService(
            model=OpenAIAssistantsModel(client=client),
            state=InMemoryStateStore(),
            configs=InMemoryConfigRepository.of(PROFILE),
            tools=registry,
            default_assistant_id="helper",
        )
        conversation_id = await service.start_conversation()
        result = await service.chat(conversation_id, "Rome?")
    assert result.texts == ["It is sunny in Rome."]
    assert [o.output for o in result.tool_outcomes] == ["sunny in Rome"]
    [submitted] = bodies(fake_openai, "runs.submit_tool_outputs")
    assert submitted["tool_outputs"] == [{"tool_call_id": "call_1", "output": "sunny in Rome"}]


@pytest.mark.parametrize(
    ("status", "message"),
    [
        ("failed", "failed: server_error: boom"),
        ("expired", "expired before it finished"),
        ("cancelled", "was cancelled"),
        ("incomplete", "ended incomplete: max_completion_tokens"),
    ],
)
async def test_a_run_that_does_not_complete_fails_the_step(assistants, model, status, message):
    assistants.play(ended(status), reply("fine now"))
    conversation = await model.open_conversation(PROFILE)
    with pytest.raises(UpstreamError, match=message) as raised:
        await step(model, conversation, UserInput("hi"))
    assert type(raised.value) is UpstreamError
    assert ModelMessage("fine now") in await step(model, conversation, UserInput("again"))


async def test_a_run_failed_on_rate_limits_is_retryable(assistants, model):
    assistants.play(ended("failed", code="rate_limit_exceeded", message="slow down"))
    conversation = await model.open_conversation(PROFILE)
    with pytest.raises(UpstreamUnavailableError, match="slow down"):
        await step(model, conversation, UserInput("hi"))


async def test_a_run_left_waiting_for_tools_is_cancelled_before_the_next_message(
    fake_openai, assistants, model
):
    assistants.play(calls(call("weather__get_forecast", "{}", "call_x")), reply("Hello"))
    conversation = await model.open_conversation(PROFILE)
    await step(model, conversation, UserInput("weather?"))  # the run loop never answers
    events = await step(model, conversation, UserInput("never mind"))
    assert ModelMessage("Hello") in events
    [stuck, fresh] = assistants.runs[conversation.id]
    assert (stuck["status"], fresh["status"]) == ("cancelled", "completed")
    assert len(fake_openai.requests_to("runs.cancel")) == 1


async def test_a_stale_run_of_a_crashed_process_is_recovered(
    fake_openai, assistants, openai_client
):
    conversation = await OpenAIAssistantsModel(client=openai_client).open_conversation(PROFILE)
    plant_run(assistants, conversation.id, "requires_action", tool_calls=(("c1", "t__f", "{}"),))
    assistants.play(reply("Back again"))
    restarted = OpenAIAssistantsModel(client=openai_client)  # knows nothing of the thread
    events = await step(restarted, conversation, UserInput("hello?"))
    assert ModelMessage("Back again") in events
    [listed] = fake_openai.requests_to("runs.list")
    assert listed.query == {"limit": ["1"], "order": ["desc"]}
    assert assistants.runs[conversation.id][0]["status"] == "cancelled"
    assert len(fake_openai.requests_to("messages.create")) == 1


async def test_a_message_refused_for_another_process_run_is_added_after_recovery(
    fake_openai, assistants, model
):
    conversation = await model.open_conversation(PROFILE)  # known free: nothing is listed
    plant_run(assistants, conversation.id, "in_progress")  # ... until another process runs
    assistants.play(reply("Hi"))
    assert ModelMessage("Hi") in await step(model, conversation, UserInput("hello?"))
    assert len(fake_openai.requests_to("messages.create")) == 2  # refused, then added
    assert len(fake_openai.requests_to("runs.list")) == 1
    assert assistants.runs[conversation.id][0]["status"] == "cancelled"


async def test_a_young_run_this_process_does_not_know_is_a_conflict(assistants, model):
    conversation = await model.open_conversation(PROFILE)
    plant_run(assistants, conversation.id, "in_progress", age=1)
    with pytest.raises(ConflictError):
        await step(model, conversation, UserInput("hello?"))
    assert assistants.runs[conversation.id][0]["status"] == "in_progress"


async def test_a_run_that_will_not_end_is_reported_as_unavailable(assistants, openai_client):
    assistants.cancel_delay = 10_000
    model = OpenAIAssistantsModel(client=openai_client, recovery_timeout=0.2)
    conversation = await model.open_conversation(PROFILE)
    plant_run(assistants, conversation.id, "in_progress")
    with pytest.raises(UpstreamUnavailableError, match="still being cancelled"):
        await step(model, conversation, UserInput("hello?"))


async def test_a_429_before_the_stream_is_unavailable_with_retry_after(fake_openai, model):
    conversation = await model.open_conversation(PROFILE)
    fake_openai.script("runs.create", error_reply(429, "slow down", headers={"retry-after": "7"}))
    with pytest.raises(UpstreamUnavailableError) as raised:
        await step(model, conversation, UserInput("hi"))
    assert raised.value.retry_after == 7.0


async def test_a_500_before_the_stream_is_retried_by_the_sdk(
    openai_transport, fake_openai, assistants
):
    assistants.play(reply("made it"))
    client = make_openai_client(
        transport=openai_transport, api_key=API_KEY, base_url=fake_openai.base_url, max_retries=1
    )
    async with client:
        model = OpenAIAssistantsModel(client=client)
        conversation = await model.open_conversation(PROFILE)
        headers = {"retry-after-ms": "1"}
        fake_openai.script("runs.create", error_reply(500, "oops", headers=headers))
        events = await step(model, conversation, UserInput("hi"))
    assert ModelMessage("made it") in events
    assert len(fake_openai.requests_to("runs.create")) == 2


async def test_a_slow_server_fails_the_step_after_the_timeout(
    openai_transport, fake_openai, assistants
):
    assistants.play(RunStep(text="late", delay=1.0), reply("on time"))
    client = make_openai_client(
        transport=openai_transport,
        api_key=API_KEY,
        base_url=fake_openai.base_url,
        max_retries=0,
        timeout=0.2,
    )
    async with client:
        model = OpenAIAssistantsModel(client=client)
        conversation = await model.open_conversation(PROFILE)
        with pytest.raises(UpstreamUnavailableError, match="in time"):
            await step(model, conversation, UserInput("hi"))
        assert ModelMessage("on time") in await step(model, conversation, UserInput("again"))


async def test_a_dropped_connection_fails_the_step_and_the_thread_stays_usable(
    fake_openai, assistants, model
):
    assistants.play(RunStep(text="a b c", deltas=("a ", "b ", "c"), drop_after=7), reply("ok"))
    conversation = await model.open_conversation(PROFILE)
    with pytest.raises(UpstreamUnavailableError, match="connection"):
        await step(model, conversation, UserInput("hi"))
    assert ModelMessage("ok") in await step(model, conversation, UserInput("again"))
    assert [run["status"] for run in assistants.runs[conversation.id]] == [
        "cancelled",
        "completed",
    ]


async def test_an_error_event_fails_the_step_and_its_run_is_checked_next_time(
    fake_openai, assistants, model
):
    assistants.play(RunStep(text="partial", error_event="the model crashed"), reply("ok"))
    conversation = await model.open_conversation(PROFILE)
    with pytest.raises(UpstreamError, match="the model crashed"):
        await step(model, conversation, UserInput("hi"))
    assert ModelMessage("ok") in await step(model, conversation, UserInput("again"))
    # The run of the failed step was remembered: looked up by id, not listed.
    assert len(fake_openai.requests_to("runs.retrieve")) == 1
    assert not fake_openai.requests_to("runs.list")


async def test_a_malformed_event_is_logged_and_fails_the_step(assistants, model):
    assistants.play(RunStep(text="hi", malformed_after=3), reply("ok"))
    conversation = await model.open_conversation(PROFILE)
    with structlog.testing.capture_logs() as logs, pytest.raises(UpstreamError, match="malformed"):
        await step(model, conversation, UserInput("hi"))
    assert any(entry["event"] == "llm.malformed_event" for entry in logs)
    assert ModelMessage("ok") in await step(model, conversation, UserInput("again"))


async def test_each_upstream_call_carries_and_logs_the_correlation_id(
    fake_openai, assistants, model
):
    assistants.play(reply("hi"))
    with (
        structlog.contextvars.bound_contextvars(correlation_id="corr-123"),
        structlog.testing.capture_logs() as logs,
    ):
        conversation = await model.open_conversation(PROFILE)
        await step(model, conversation, UserInput("hi"))
    assert fake_openai.requests
    assert {r.headers.get("x-client-request-id") for r in fake_openai.requests} == {"corr-123"}
    calls_logged = [entry for entry in logs if entry["event"] == "openai.call"]
    assert [entry["operation"] for entry in calls_logged] == [
        "threads.create",
        "threads.messages.create",
        "threads.runs.create",
    ]
    assert {entry["correlation_id"] for entry in calls_logged} == {"corr-123"}


async def test_history_is_bounded_to_the_latest_messages_across_pages(
    fake_openai, assistants, openai_client
):
    model = OpenAIAssistantsModel(client=openai_client, max_history_messages=3)
    conversation = await model.open_conversation(PROFILE)
    for number in range(3):
        assistants.play(reply(f"answer {number}"))
        await step(model, conversation, UserInput(f"question {number}"))
    assert await model.history(conversation.id) == [
        Message(Role.ASSISTANT, "answer 1"),
        Message(Role.USER, "question 2"),
        Message(Role.ASSISTANT, "answer 2"),
    ]


async def test_the_service_limits_rounds_and_recovers_on_the_next_turn(
    openai_transport, fake_openai, assistants
):
    def ping() -> str:
        """Answer pong."""
        return "pong"

    registry = FunctionToolRegistry()
    registry.register(ping, namespace="t")
    profile = AssistantProfile(
        id="helper",
        model="m",
        tools=("t.ping",),
        remote_id="asst_remote",
        limits=RunLimits(max_tool_rounds=1),
    )
    assistants.play(
        calls(call("t__ping")), calls(call("t__ping")), reply("Sorry, let us start again.")
    )
    client = make_openai_client(
        transport=openai_transport, api_key=API_KEY, base_url=fake_openai.base_url, max_retries=0
    )
    async with client:
        service = AssistantService(
            model=OpenAIAssistantsModel(client=client),
            state=InMemoryStateStore(),
            configs=InMemoryConfigRepository.of(profile),
            tools=registry,
            default_assistant_id="helper",
        )
        conversation_id = await service.start_conversation()
        with pytest.raises(Exception, match="more than 1 times"):
            await service.chat(conversation_id, "loop")
        result = await service.chat(conversation_id, "hello")
    assert result.texts == ["Sorry, let us start again."]


async def test_an_event_of_the_wrong_shape_fails_the_step_cleanly(fake_openai, model):
    conversation = await model.open_conversation(PROFILE)
    broken = SSEEvent({"id": "run_1", "object": "thread.run"}, event="thread.run.requires_action")
    fake_openai.script("runs.create", SSEReply((broken,)))
    with structlog.testing.capture_logs() as logs, pytest.raises(UpstreamError, match="malformed"):
        await step(model, conversation, UserInput("hi"))
    assert [e["kind"] for e in logs if e["event"] == "llm.malformed_event"] == ["event"]


async def test_a_stream_that_ends_before_the_run_does_fails_the_step(fake_openai, model):
    conversation = await model.open_conversation(PROFILE)
    run = run_object(conversation.id, "asst_1", status="in_progress")
    started = SSEEvent(run, event="thread.run.in_progress")
    fake_openai.script("runs.create", SSEReply((started,)))
    with pytest.raises(UpstreamError, match="before the run finished"):
        await step(model, conversation, UserInput("hi"))


async def test_a_thread_made_elsewhere_belongs_to_the_default_assistant(assistants, openai_client):
    thread = assistants.create_thread(None)  # as the original service made them: no metadata
    model = OpenAIAssistantsModel(client=openai_client, default_assistant_id="helper")
    assert (await model.get_conversation(thread["id"])).assistant_id == "helper"


async def test_metadata_over_the_api_limit_is_refused_before_any_call(fake_openai, model):
    with pytest.raises(InvalidInputError) as raised:
        await model.open_conversation(PROFILE, {f"k{i}": "v" for i in range(16)})
    assert "metadata" in raised.value.fields
    assert not fake_openai.requests


async def test_tool_outputs_find_the_waiting_run_after_a_restart(
    fake_openai, assistants, openai_client
):
    assistants.play(calls(call("weather__get_forecast", "{}", "call_r")), reply("Done."))
    before = OpenAIAssistantsModel(client=openai_client)
    conversation = await before.open_conversation(PROFILE)
    [asked] = await step(before, conversation, UserInput("weather?"))
    after = OpenAIAssistantsModel(client=openai_client)  # a new process: nothing remembered
    outcome = ToolOutcome(asked.call, OutcomeStatus.OK, "sunny")
    assert ModelMessage("Done.") in await step(after, conversation, ToolResults((outcome,)))
    assert len(fake_openai.requests_to("runs.list")) == 1
    with pytest.raises(UpstreamError, match="waiting for tool outputs"):
        await step(after, conversation, ToolResults((outcome,)))


async def test_history_follows_the_pages_of_a_long_thread(fake_openai, assistants, model):
    conversation = await model.open_conversation(PROFILE)
    for number in range(150):
        role = "user" if number % 2 == 0 else "assistant"
        assistants.messages[conversation.id].append(
            message_object(conversation.id, role, f"m{number}", None)
        )
    history = await model.history(conversation.id)
    assert [m.text for m in history] == [f"m{number}" for number in range(150)]
    first, second = fake_openai.requests_to("messages.list")
    assert first.query == {"order": ["desc"], "limit": ["100"]}
    assert second.query["after"] == [assistants.messages[conversation.id][50]["id"]]


async def test_settings_select_the_assistants_adapter(fake_openai):
    settings = load_settings(
        {
            "OPENAI_API_KEY": API_KEY,
            "OPENAI_BASE_URL": fake_openai.base_url,
            "LLM_BACKEND": "assistants",
            "ASSISTANT_ID": "demo",
        }
    )
    services = await services_from_settings(settings)
    guarded = services.assistant._model
    (close_client,) = services.closers
    try:
        # The real backend, behind the circuit breaker.
        assert isinstance(guarded, CircuitBreakerModel)
        model = guarded.model
        assert isinstance(model, OpenAIAssistantsModel)
        assert model.default_assistant_id == "demo"
        # Development pushed the demo profile at start-up: it runs (tests/integration/test_first_run.py).
        assert (await services.configs.get("demo")).remote_id
        await services.assistant.start_conversation()
    finally:
        await close_client()


async def test_a_malformed_listed_message_fails_history_cleanly(assistants, model):
    conversation = await model.open_conversation(PROFILE)
    assistants.messages[conversation.id].append({"id": "msg_x", "role": "user", "content": 3})
    with pytest.raises(UpstreamError, match="malformed message"):
        await model.history(conversation.id)
