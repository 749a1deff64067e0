"""The circuit breaker in front of the Responses adapter, the real SDK and the loopback fake.

What the fake server receives is counted: an open breaker must send nothing.
The breaker's clock is a fake one; the upstream's answers are real HTTP.
"""

from __future__ import annotations

from contextlib import aclosing
from typing import Any

import anyio
import attrs
import pytest

from assistant_service.adapters.llm.openai._client import make_openai_client
from assistant_service.adapters.llm.openai.responses._model import OpenAIResponsesModel
from assistant_service.application.breaker_model import CircuitBreakerModel
from assistant_service.application.circuit_breaker import BreakerState, CircuitBreaker
from assistant_service.domain.errors import (
    AssistantServiceError,
    NotFoundError,
    UpstreamCircuitOpenError,
    UpstreamError,
)
from assistant_service.domain.models import AssistantProfile
from assistant_service.domain.steps import ModelMessage, ModelTextDelta, UserInput
from fakeopenai import API_KEY, JSONReply, error_reply
from fakeopenai import turns as t

pytestmark = pytest.mark.anyio

PROFILE = AssistantProfile(id="helper", model="gpt-test")
COOLDOWN = 30.0


@attrs.define
class FakeClock:
    now: float = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def breaker(clock: FakeClock) -> CircuitBreaker:
    return CircuitBreaker(failures=3, cooldown=COOLDOWN, clock=clock)


@pytest.fixture
def model(openai_client: Any, breaker: CircuitBreaker) -> CircuitBreakerModel:
    return CircuitBreakerModel(OpenAIResponsesModel(openai_client), breaker)


async def step(model: Any, conversation: Any) -> list:
    stream = model.stream_step(conversation, PROFILE, UserInput("hi"), ())
    async with aclosing(stream) as events:
        return [e async for e in events]


async def failing_steps(model: Any, conversation: Any, count: int) -> list[AssistantServiceError]:
    errors = []
    for _ in range(count):
        with pytest.raises(AssistantServiceError) as raised:
            await step(model, conversation)
        errors.append(raised.value)
    return errors


def sent(fake: Any) -> int:
    return len(fake.requests_to("responses.create"))


async def test_consecutive_5xx_open_it_and_then_nothing_reaches_the_server(
    fake_openai, model, breaker
):
    conversation = await model.open_conversation(PROFILE)
    fake_openai.script(
        "responses.create", error_reply(500, "boom"), error_reply(502, "bad"), error_reply(503, "x")
    )
    errors = await failing_steps(model, conversation, 3)
    assert [e.code for e in errors] == ["upstream_error", "upstream_error", "upstream_unavailable"]
    assert breaker.status().state is BreakerState.OPEN

    fake_openai.responses.turn(t.text("never sent"))
    refused = await failing_steps(model, conversation, 5)
    with pytest.raises(UpstreamCircuitOpenError):
        await model.open_conversation(PROFILE)
    with pytest.raises(UpstreamCircuitOpenError):
        await model.history(conversation.id)

    assert {e.code for e in refused} == {"upstream_circuit_open"}
    assert refused[0].retry_after == COOLDOWN
    assert sent(fake_openai) == 3
    assert len(fake_openai.requests_to("conversations.create")) == 1
    assert not fake_openai.requests_to("conversations.items.list")


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422, 429])
async def test_4xx_answers_do_not_count(fake_openai, model, breaker, status):
    conversation = await model.open_conversation(PROFILE)
    fake_openai.script("responses.create", *[error_reply(status, "no")] * 6)
    errors = await failing_steps(model, conversation, 6)
    assert all(isinstance(e, UpstreamError) and not e.fault for e in errors)
    assert breaker.status().state is BreakerState.CLOSED
    assert breaker.status().consecutive_failures == 0
    fake_openai.responses.turn(t.text("fine"))
    assert ModelMessage("fine") in await step(model, conversation)
    assert sent(fake_openai) == 7


async def test_a_4xx_between_faults_resets_the_count(fake_openai, model, breaker):
    conversation = await model.open_conversation(PROFILE)
    fake_openai.script(
        "responses.create",
        error_reply(500, "a"),
        error_reply(500, "b"),
        error_reply(400, "c"),
        error_reply(500, "d"),
        error_reply(500, "e"),
    )
    await failing_steps(model, conversation, 5)
    assert breaker.status().state is BreakerState.CLOSED
    assert breaker.status().consecutive_failures == 2


async def test_a_dropped_stream_a_timeout_and_a_malformed_reply_count_as_faults(
    openai_transport, fake_openai, breaker
):
    client = make_openai_client(
        transport=openai_transport,
        api_key=API_KEY,
        base_url=fake_openai.base_url,
        max_retries=0,
        timeout=0.5,
    )
    try:
        model = CircuitBreakerModel(OpenAIResponsesModel(client, state="local"), breaker)
        conversation = await model.open_conversation(PROFILE)
        fake_openai.responses.turn(t.text("a long answer cut short", drop_after=5))
        fake_openai.script("responses.create", JSONReply({}, delay=3.0))  # silent past the timeout
        fake_openai.responses.turn(t.text("broken", malformed_after=4))
        errors = await failing_steps(model, conversation, 3)
    finally:
        await client.close()
    assert [e.fault for e in errors if isinstance(e, UpstreamError)] == [True, True, True]
    assert breaker.status().state is BreakerState.OPEN


async def test_failed_conversation_creations_count_against_the_same_upstream(
    fake_openai, model, breaker
):
    conversation = await model.open_conversation(PROFILE)
    fake_openai.script("conversations.create", error_reply(500, "a"), error_reply(503, "b"))
    for _ in range(2):
        with pytest.raises(UpstreamError):
            await model.open_conversation(PROFILE)
    fake_openai.script("responses.create", error_reply(500, "c"))
    await failing_steps(model, conversation, 1)
    assert breaker.status().state is BreakerState.OPEN
    with pytest.raises(UpstreamCircuitOpenError):
        await model.open_conversation(PROFILE)
    assert len(fake_openai.requests_to("conversations.create")) == 3


async def test_after_the_cooldown_one_probe_goes_through_and_closes_it(
    fake_openai, model, breaker, clock
):
    conversation = await model.open_conversation(PROFILE)
    fake_openai.script("responses.create", *[error_reply(500, "down")] * 3)
    await failing_steps(model, conversation, 3)
    clock.now += COOLDOWN

    # The probe streams slowly: it is in flight while the others come.
    fake_openai.responses.turn(t.text("back again", deltas=["back ", "again"], pause=0.05))
    probe = model.stream_step(conversation, PROFILE, UserInput("hi"), ())
    async with aclosing(probe) as events:
        with anyio.fail_after(10):
            first = await anext(events)
        while not isinstance(first, ModelTextDelta):
            first = await anext(events)
        others = await failing_steps(model, conversation, 3)
        with pytest.raises(UpstreamCircuitOpenError):
            await model.open_conversation(PROFILE)
        assert {e.code for e in others} == {"upstream_circuit_open"}
        assert sent(fake_openai) == 4  # three faults and the probe
        rest = [e async for e in events]
    assert ModelMessage("back again") in rest
    assert breaker.status().state is BreakerState.CLOSED

    fake_openai.responses.turn(t.text("and again"))
    assert ModelMessage("and again") in await step(model, conversation)
    assert sent(fake_openai) == 5


async def test_a_failed_probe_opens_it_for_another_cooldown(fake_openai, model, breaker, clock):
    conversation = await model.open_conversation(PROFILE)
    fake_openai.script("responses.create", *[error_reply(500, "down")] * 4)
    await failing_steps(model, conversation, 3)
    clock.now += COOLDOWN
    (probe_error,) = await failing_steps(model, conversation, 1)
    assert probe_error.code == "upstream_error"
    assert breaker.status().state is BreakerState.OPEN
    assert breaker.status().retry_after == COOLDOWN

    clock.now += COOLDOWN - 1
    (refused,) = await failing_steps(model, conversation, 1)
    assert isinstance(refused, UpstreamCircuitOpenError)
    assert refused.retry_after == 1.0
    assert sent(fake_openai) == 4


async def test_an_unknown_conversation_is_no_verdict(fake_openai, model, breaker, clock):
    conversation = await model.open_conversation(PROFILE)
    fake_openai.script("responses.create", *[error_reply(500, "down")] * 3)
    await failing_steps(model, conversation, 3)
    clock.now += COOLDOWN
    with pytest.raises(NotFoundError):
        await model.get_conversation("conv_nobody")  # the probe: the server answered 404
    assert breaker.status().state is BreakerState.HALF_OPEN
    fake_openai.responses.turn(t.text("up"))
    await step(model, conversation)
    assert breaker.status().state is BreakerState.CLOSED
