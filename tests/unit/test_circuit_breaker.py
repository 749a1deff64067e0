"""The circuit breaker and the model behind it, on a fake clock: no sleeping, no network."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping, Sequence

import anyio
import attrs
import pytest

from assistant_service.adapters.llm.scripted import ScriptedModel, fail, reply
from assistant_service.application.breaker_model import CircuitBreakerModel
from assistant_service.application.circuit_breaker import (
    PROBE_RETRY_AFTER,
    BreakerState,
    BreakerStatus,
    CircuitBreaker,
)
from assistant_service.domain.errors import (
    ConflictError,
    NotFoundError,
    UpstreamCircuitOpenError,
    UpstreamError,
    UpstreamUnavailableError,
    restore_error,
)
from assistant_service.domain.leases import Lease
from assistant_service.domain.models import AssistantProfile, Conversation, Message
from assistant_service.domain.steps import ModelEvent, ModelTextDelta, StepInput, UserInput
from assistant_service.domain.tools import ToolSpec
from assistant_service.entrypoints.bootstrap import bootstrap

pytestmark = pytest.mark.anyio

PROFILE = AssistantProfile(id="demo", model="m")
CONVERSATION = Conversation.new(PROFILE.id)
SERVER_ERROR = UpstreamError("the language model answered 500", fault=True)
TIMEOUT = UpstreamUnavailableError("the language model did not answer in time", fault=True)
BAD_REQUEST = UpstreamError("the language model answered 400")
RATE_LIMITED = UpstreamUnavailableError("the language model answered 429", retry_after=2.0)


@attrs.define
class FakeClock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@attrs.define
class PlannedModel:
    """A LanguageModel whose calls end as planned: each plan entry is ``None`` (ok) or an error.

    It counts the calls that reached it (what an upstream would have received).
    """

    plan: list[BaseException | None] = attrs.field(factory=list)
    calls: int = 0
    # Set by a test to hold a step open between its first event and its end.
    hold: anyio.Event | None = None

    def _next(self) -> BaseException | None:
        self.calls += 1
        return self.plan.pop(0) if self.plan else None

    async def open_conversation(
        self, profile: AssistantProfile, metadata: Mapping[str, str] | None = None
    ) -> Conversation:
        error = self._next()
        if error is not None:
            raise error
        return Conversation.new(profile.id, metadata)

    async def get_conversation(self, conversation_id: str) -> Conversation:
        error = self._next()
        if error is not None:
            raise error
        return attrs.evolve(CONVERSATION, id=conversation_id)

    async def history(self, conversation_id: str) -> list[Message]:  # noqa: ARG002
        error = self._next()
        if error is not None:
            raise error
        return []

    async def stream_step(
        self,
        conversation: Conversation,  # noqa: ARG002
        profile: AssistantProfile,  # noqa: ARG002
        step: StepInput,  # noqa: ARG002
        tools: Sequence[ToolSpec],  # noqa: ARG002
        *,
        lease: Lease | None = None,  # noqa: ARG002
    ) -> AsyncIterator[ModelEvent]:
        error = self._next()
        yield ModelTextDelta("partial ")  # a fault after the first event: mid-stream
        if self.hold is not None:
            await self.hold.wait()
        if error is not None:
            raise error
        yield ModelTextDelta("answer")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def changes() -> list[tuple[str, str]]:
    return []


@pytest.fixture
def breaker(clock: FakeClock, changes: list[tuple[str, str]]) -> CircuitBreaker:
    return CircuitBreaker(
        failures=3, cooldown=30.0, clock=clock, on_change=lambda *c: changes.append(c)
    )


@pytest.fixture
def upstream() -> PlannedModel:
    return PlannedModel()


@pytest.fixture
def model(upstream: PlannedModel, breaker: CircuitBreaker) -> CircuitBreakerModel:
    return CircuitBreakerModel(upstream, breaker)


async def step(model: CircuitBreakerModel) -> list[ModelEvent]:
    return [e async for e in model.stream_step(CONVERSATION, PROFILE, UserInput("hi"), ())]


async def fails_with(model: CircuitBreakerModel, kind: type[BaseException]) -> BaseException:
    with pytest.raises(kind) as raised:
        await step(model)
    return raised.value


async def open_it(model: CircuitBreakerModel, upstream: PlannedModel, faults: int = 3) -> None:
    upstream.plan.extend([SERVER_ERROR] * faults)
    for _ in range(faults):
        await fails_with(model, UpstreamError)


async def test_consecutive_faults_open_it_and_calls_then_fail_fast_without_the_upstream(
    model, upstream, breaker, clock
):
    await open_it(model, upstream)
    assert breaker.status().state is BreakerState.OPEN
    reached = upstream.calls

    clock.advance(12.2)
    refused = await fails_with(model, UpstreamCircuitOpenError)
    with pytest.raises(UpstreamCircuitOpenError):
        await model.open_conversation(PROFILE)
    with pytest.raises(UpstreamCircuitOpenError):
        await model.history("conv_1")

    assert upstream.calls == reached
    assert refused.code == "upstream_circuit_open"
    assert refused.retry_after == 18.0  # 17.8 s left, in whole seconds rounded up
    assert breaker.status().consecutive_failures == 3
    assert breaker.status().retry_after == 18.0


async def test_faults_of_every_kind_count_and_a_fault_mid_stream_counts_too(
    model, upstream, breaker
):
    upstream.plan.extend([TIMEOUT, SERVER_ERROR, UpstreamError("bad reply", fault=True)])
    for _ in range(3):
        await fails_with(model, UpstreamError)  # each after its first event
    assert breaker.status().state is BreakerState.OPEN


async def test_refusals_do_not_count_and_an_answer_resets_the_count(model, upstream, breaker):
    upstream.plan.extend(
        [SERVER_ERROR, SERVER_ERROR, BAD_REQUEST, RATE_LIMITED, SERVER_ERROR, SERVER_ERROR]
    )
    for _ in range(6):
        await fails_with(model, UpstreamError)
    # Two faults, then two answers (400, 429) that say the upstream is up, then two faults.
    assert breaker.status() == BreakerStatus(BreakerState.CLOSED, 2, 0.0)
    await step(model)
    assert breaker.status().consecutive_failures == 0


async def test_errors_that_are_not_the_upstreams_give_no_verdict(model, upstream, breaker):
    upstream.plan.extend(
        [SERVER_ERROR, SERVER_ERROR, ConflictError("busy"), NotFoundError("conversation", "c")]
    )
    await fails_with(model, UpstreamError)
    await fails_with(model, UpstreamError)
    await fails_with(model, ConflictError)
    with pytest.raises(NotFoundError):
        await model.get_conversation("c")
    assert breaker.status().consecutive_failures == 2
    upstream.plan.append(SERVER_ERROR)
    await fails_with(model, UpstreamError)
    assert breaker.status().state is BreakerState.OPEN


async def test_after_the_cooldown_one_probe_goes_through_and_its_success_closes_it(
    model, upstream, breaker, clock, changes
):
    await open_it(model, upstream)
    clock.advance(30.0)
    assert breaker.status().state is BreakerState.HALF_OPEN
    assert breaker.status().retry_after == 0.0
    upstream.hold = anyio.Event()
    probe = model.stream_step(CONVERSATION, PROFILE, UserInput("hi"), ())
    assert await anext(probe) == ModelTextDelta("partial ")  # the probe is in flight

    others = await fails_with(model, UpstreamCircuitOpenError)
    with pytest.raises(UpstreamCircuitOpenError):
        await model.open_conversation(PROFILE)
    assert others.retry_after == PROBE_RETRY_AFTER
    assert upstream.calls == 4  # three faults and the probe

    upstream.hold.set()
    assert [e async for e in probe] == [ModelTextDelta("answer")]
    assert breaker.status() == BreakerStatus(BreakerState.CLOSED, 0, 0.0)
    assert await step(model)
    assert [state for _, state in changes] == ["closed", "open", "half_open", "closed"]


async def test_a_failed_probe_opens_it_for_another_cooldown(model, upstream, breaker, clock):
    await open_it(model, upstream)
    clock.advance(31.0)
    upstream.plan.append(TIMEOUT)
    await fails_with(model, UpstreamUnavailableError)
    assert breaker.status().state is BreakerState.OPEN
    assert breaker.status().retry_after == 30.0
    assert breaker.status().consecutive_failures == 4

    clock.advance(29.5)
    await fails_with(model, UpstreamCircuitOpenError)
    assert upstream.calls == 4
    clock.advance(0.5)
    await step(model)
    assert breaker.status().state is BreakerState.CLOSED


async def test_a_probe_that_is_abandoned_lets_the_next_call_probe(model, upstream, breaker, clock):
    await open_it(model, upstream)
    clock.advance(30.0)
    probe = model.stream_step(CONVERSATION, PROFILE, UserInput("hi"), ())
    await anext(probe)
    await probe.aclose()  # the caller stopped reading: no verdict
    assert breaker.status().state is BreakerState.HALF_OPEN
    await step(model)  # the next call is the probe
    assert breaker.status().state is BreakerState.CLOSED


async def test_conversation_calls_answered_prove_nothing_but_their_faults_count(
    model, upstream, breaker, clock
):
    upstream.plan.extend([SERVER_ERROR, None, SERVER_ERROR, None])
    await fails_with(model, UpstreamError)
    await model.get_conversation("c")  # found (perhaps in a cache): no verdict
    with pytest.raises(UpstreamError):
        await model.open_conversation(PROFILE)  # a fault of the same upstream
    assert breaker.status().consecutive_failures == 2
    await model.history("c")
    assert breaker.status().consecutive_failures == 2
    await step(model)  # a step that ends resets the count
    assert breaker.status().consecutive_failures == 0

    await open_it(model, upstream)
    clock.advance(30.0)
    upstream.plan.append(BAD_REQUEST)
    with pytest.raises(UpstreamError):
        await model.open_conversation(PROFILE)  # the probe; refused, no verdict
    await model.get_conversation("c")  # the next probe: found, no verdict
    assert breaker.status().state is BreakerState.HALF_OPEN
    await step(model)  # a step that ends: the upstream is back
    assert breaker.status().state is BreakerState.CLOSED


async def test_calls_in_flight_when_it_opened_cannot_close_it(model, upstream, breaker):
    upstream.hold = anyio.Event()
    late = model.stream_step(CONVERSATION, PROFILE, UserInput("hi"), ())
    await anext(late)  # let through while closed, still running
    upstream.hold = None
    await open_it(model, upstream)
    assert [e async for e in late] == [ModelTextDelta("answer")]  # it succeeds, late
    assert breaker.status().state is BreakerState.OPEN


async def test_local_conversation_calls_bypass_the_breaker(upstream, breaker):
    model = CircuitBreakerModel(upstream, breaker, conversations_upstream=False)
    await open_it(model, upstream)
    opened = await model.open_conversation(PROFILE)
    assert await model.get_conversation(opened.id)
    assert await model.history(opened.id) == []
    await fails_with(model, UpstreamCircuitOpenError)


async def test_the_breaker_logs_opening_probing_and_closing(model, upstream, clock, caplog):
    caplog.set_level(logging.INFO, "assistant_service.application.circuit_breaker")
    await open_it(model, upstream)
    clock.advance(30.0)
    await step(model)
    events = [(r.getMessage(), r.levelno) for r in caplog.records]
    assert events == [
        ("breaker.opened", logging.WARNING),
        ("breaker.probing", logging.INFO),
        ("breaker.closed", logging.INFO),
    ]
    opened = caplog.records[0]
    assert (opened.upstream, opened.consecutive_failures, opened.probe_failed) == ("llm", 3, False)


async def test_a_run_on_an_open_breaker_fails_with_its_error_and_keeps_the_conversation(clock):
    scripted = ScriptedModel().script(*[fail(SERVER_ERROR, after_text="half")] * 2, reply("back"))
    breaker = CircuitBreaker(failures=2, cooldown=5.0, clock=clock)
    service = bootstrap(model=CircuitBreakerModel(scripted, breaker, conversations_upstream=False))
    conversation = await service.start_conversation()
    for _ in range(2):
        with pytest.raises(UpstreamError):
            await service.chat(conversation, "hi")
    with pytest.raises(UpstreamCircuitOpenError) as refused:
        await service.chat(conversation, "hi")
    assert refused.value.retry_after == 5.0
    assert len(scripted.requests) == 2
    clock.advance(5.0)
    assert (await service.chat(conversation, "hi")).texts == ["back"]


def test_it_refuses_thresholds_that_cannot_work():
    with pytest.raises(ValueError, match="failures"):
        CircuitBreaker(failures=0)
    with pytest.raises(ValueError, match="cooldown"):
        CircuitBreaker(cooldown=0)


def test_an_open_circuit_error_is_a_retryable_upstream_error_that_survives_a_replay():
    error = UpstreamCircuitOpenError("refused", retry_after=3.0)
    assert isinstance(error, UpstreamUnavailableError)
    assert not error.fault
    restored = restore_error(error.code, error.message, error.retry_after)
    assert type(restored) is UpstreamCircuitOpenError
    assert restored.retry_after == 3.0


async def test_the_metrics_gauge_shows_the_state_it_is_in(clock):
    prometheus_client = pytest.importorskip("prometheus_client")
    from prometheus_client.parser import text_string_to_metric_families  # noqa: PLC0415

    from assistant_service.adapters.observability.prometheus import (  # noqa: PLC0415
        PrometheusObserver,
        exposition,
    )

    registry = prometheus_client.CollectorRegistry()
    observer = PrometheusObserver.create("responses", registry)
    breaker = CircuitBreaker(failures=1, clock=clock, on_change=observer.breaker_changed)

    def states() -> dict[str, float]:
        text = exposition(registry).decode()
        return {
            sample.labels["state"]: sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == "assistant_upstream_breaker_state"
            and sample.labels["upstream"] == "llm"
        }

    assert states() == {"closed": 1.0, "open": 0.0, "half_open": 0.0}
    breaker.record(breaker.admit(), SERVER_ERROR)
    assert states() == {"closed": 0.0, "open": 1.0, "half_open": 0.0}
    clock.advance(30.0)
    probe = breaker.admit()
    assert states() == {"closed": 0.0, "open": 0.0, "half_open": 1.0}
    breaker.record(probe, None)
    assert states() == {"closed": 1.0, "open": 0.0, "half_open": 0.0}
