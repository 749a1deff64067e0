"""The language-model port's contract, run against every LanguageModel adapter.

Each adapter is reached through a *driver*: an object with the adapter as
``model`` and three ways to script what the model does next (``says``,
``calls``, ``breaks_mid_stream``), plus an id that names no conversation.
A driver factory is an async context manager (start a fake server, open a
client, close both after). To add an adapter:

1. write a driver class with the same methods as :class:`ScriptedDriver`
   (for an OpenAI adapter, script ``fakeopenai`` as :class:`ResponsesDriver` does);
2. write an ``@asynccontextmanager`` factory yielding it;
3. add it to ``DRIVERS`` under a short id.

Every test then runs against it. The contract is behaviour a caller of the
port relies on; what goes over the wire is tested in tests/integration.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Protocol

import attrs
import pytest

from assistant_service.adapters.llm.scripted import ScriptedModel, call_tools, fail, reply
from assistant_service.application.breaker_model import CircuitBreakerModel
from assistant_service.application.circuit_breaker import CircuitBreaker
from assistant_service.domain.errors import NotFoundError, UpstreamError, UpstreamUnavailableError
from assistant_service.domain.models import AssistantProfile, Message, Role
from assistant_service.domain.steps import (
    ModelMessage,
    ModelTextDelta,
    ModelToolCall,
    ToolResults,
    UserInput,
)
from assistant_service.domain.tools import OutcomeStatus, ToolCall, ToolOutcome, ToolSpec
from assistant_service.ports.language_model import LanguageModel

pytestmark = pytest.mark.anyio

# remote_id: the Assistants backend runs the remote assistant it names; others ignore it.
PROFILE = AssistantProfile(
    id="contract-assistant", model="gpt-test", instructions="Be brief.", remote_id="asst_contract"
)
LOOKUP = ToolSpec(
    "kb.lookup",
    "Look a word up.",
    {"type": "object", "properties": {"word": {"type": "string"}}, "required": ["word"]},
)


class Driver(Protocol):
    model: LanguageModel
    unknown_conversation_id: str

    def says(self, text: str) -> None:
        """The next step answers ``text``."""

    def calls(self, *calls: ToolCall) -> None:
        """The next step asks for ``calls`` (canonical dotted names)."""

    def breaks_mid_stream(self, text: str) -> None:
        """The next step streams part of ``text`` (two words or more), then breaks."""


@attrs.define
class ScriptedDriver:
    model: ScriptedModel = attrs.field(factory=ScriptedModel)
    unknown_conversation_id: str = "conv_unknown"

    def says(self, text: str) -> None:
        self.model.script(reply(text))

    def calls(self, *calls: ToolCall) -> None:
        self.model.script(call_tools(*calls))

    def breaks_mid_stream(self, text: str) -> None:
        self.model.script(fail(UpstreamUnavailableError("connection lost"), after_text=text))


@asynccontextmanager
async def scripted() -> AsyncIterator[Driver]:
    yield ScriptedDriver()


@attrs.define
class ResponsesDriver:
    fake: Any
    model: Any
    unknown_conversation_id: str

    def says(self, text: str) -> None:
        from fakeopenai import turns  # noqa: PLC0415 -- only when the openai extra is there

        self.fake.responses.turn(turns.text(text))

    def calls(self, *calls: ToolCall) -> None:
        from assistant_service.adapters.tools.naming import to_wire_name  # noqa: PLC0415
        from fakeopenai import turns  # noqa: PLC0415

        wire = [turns.call(to_wire_name(c.name), c.arguments, call_id=c.id) for c in calls]
        self.fake.responses.turn(turns.calls(*wire))

    def breaks_mid_stream(self, text: str) -> None:
        from fakeopenai import turns  # noqa: PLC0415

        # Five events: created, in_progress, item added, part added, the first delta.
        self.fake.responses.turn(turns.text(text, drop_after=5))


def responses(state: str) -> Callable[[], AbstractAsyncContextManager[Driver]]:
    @asynccontextmanager
    async def factory() -> AsyncIterator[Driver]:
        pytest.importorskip("openai")
        from assistant_service.adapters.llm.openai._client import (  # noqa: PLC0415
            make_openai_client,
        )
        from assistant_service.adapters.llm.openai.responses._model import (  # noqa: PLC0415
            OpenAIResponsesModel,
        )
        from fakeopenai import API_KEY, start_fake_openai  # noqa: PLC0415

        fake = start_fake_openai()
        client = make_openai_client(api_key=API_KEY, base_url=fake.base_url, max_retries=0)
        try:
            model = OpenAIResponsesModel(client, state=state)
            unknown = "conv_unknown" if state == "conversations" else "conv_local_unknown"
            yield ResponsesDriver(fake, model, unknown)
        finally:
            await client.close()
            fake.stop()

    return factory


def _words(text: str) -> tuple[str, ...]:
    words = text.split(" ")
    return (*(word + " " for word in words[:-1]), words[-1])


@attrs.define
class AssistantsDriver:
    fake: Any
    model: Any
    unknown_conversation_id: str = "thread_unknown"

    def says(self, text: str) -> None:
        from fakeopenai.assistants import RunStep  # noqa: PLC0415

        self.fake.extensions["assistants"].play(RunStep(text=text, deltas=_words(text)))

    def calls(self, *calls: ToolCall) -> None:
        from assistant_service.adapters.tools.naming import to_wire_name  # noqa: PLC0415
        from fakeopenai.assistants import calls as run_calls  # noqa: PLC0415

        wire = [(c.id, to_wire_name(c.name), c.arguments) for c in calls]
        self.fake.extensions["assistants"].play(run_calls(*wire))

    def breaks_mid_stream(self, text: str) -> None:
        from fakeopenai.assistants import RunStep  # noqa: PLC0415

        # Seven events: run created, queued, in_progress, step, message created,
        # in_progress, the first delta; then the connection drops.
        step = RunStep(text=text, deltas=_words(text), drop_after=7)
        self.fake.extensions["assistants"].play(step)


@attrs.define
class ChatDriver:
    fake: Any
    model: Any
    unknown_conversation_id: str = "chat_unknown"

    def says(self, text: str) -> None:
        from fakeopenai.chat import ChatStep  # noqa: PLC0415

        self.fake.extensions["chat"].play(ChatStep(text=text, deltas=_words(text)))

    def calls(self, *calls: ToolCall) -> None:
        from assistant_service.adapters.tools.naming import to_wire_name  # noqa: PLC0415
        from fakeopenai.chat import ChatStep  # noqa: PLC0415

        wire = tuple((c.id, to_wire_name(c.name), c.arguments) for c in calls)
        self.fake.extensions["chat"].play(ChatStep(calls=wire))

    def breaks_mid_stream(self, text: str) -> None:
        from fakeopenai.chat import ChatStep  # noqa: PLC0415

        # Two chunks (the role, the first delta), then the connection drops.
        self.fake.extensions["chat"].play(ChatStep(text=text, deltas=_words(text), drop_after=2))


def openai_backend(backend: str) -> Callable[[], AbstractAsyncContextManager[Driver]]:
    """The Assistants (``assistants``) or Chat Completions (``chat``) adapter on the fake."""

    @asynccontextmanager
    async def factory() -> AsyncIterator[Driver]:
        pytest.importorskip("openai")
        from assistant_service.adapters.llm.openai._client import (  # noqa: PLC0415
            make_openai_client,
        )
        from assistant_service.adapters.llm.openai.assistants._model import (  # noqa: PLC0415
            OpenAIAssistantsModel,
        )
        from assistant_service.adapters.llm.openai.chat._model import OpenAIChatModel  # noqa: PLC0415
        from fakeopenai import API_KEY, start_fake_openai  # noqa: PLC0415

        fake = start_fake_openai()
        client = make_openai_client(api_key=API_KEY, base_url=fake.base_url, max_retries=0)
        try:
            if backend == "assistants":
                # The remote assistant the contract profile names exists on the server.
                fake.extensions["assistants"].create_assistant(
                    {"model": "gpt-test"}, assistant_id="asst_contract"
                )
                yield AssistantsDriver(fake, OpenAIAssistantsModel(client=client))
            else:
                yield ChatDriver(fake, OpenAIChatModel(client=client))
        finally:
            await client.close()
            fake.stop()

    return factory


def behind_a_breaker(
    factory: Callable[[], AbstractAsyncContextManager[Any]], *, conversations_upstream: bool
) -> Callable[[], AbstractAsyncContextManager[Driver]]:
    """``factory``'s adapter behind a circuit breaker: the wrapper keeps the port's contract."""

    @asynccontextmanager
    async def wrapped() -> AsyncIterator[Driver]:
        async with factory() as inner:
            inner.model = CircuitBreakerModel(
                inner.model, CircuitBreaker(), conversations_upstream=conversations_upstream
            )
            yield inner

    return wrapped


DRIVERS: dict[str, Callable[[], AbstractAsyncContextManager[Driver]]] = {
    "scripted": scripted,
    "responses-conversations": responses("conversations"),
    "responses-local": responses("local"),
    "assistants": openai_backend("assistants"),
    "chat": openai_backend("chat"),
    "breaker+responses-conversations": behind_a_breaker(
        responses("conversations"), conversations_upstream=True
    ),
    "breaker+chat": behind_a_breaker(openai_backend("chat"), conversations_upstream=False),
}


@pytest.fixture(params=sorted(DRIVERS))
async def driver(request) -> AsyncIterator[Driver]:
    async with DRIVERS[request.param]() as made:
        yield made


async def step(driver, conversation, step_input, tools=(LOOKUP,)):
    return [e async for e in driver.model.stream_step(conversation, PROFILE, step_input, tools)]


def lookup(word: str, call_id: str) -> ToolCall:
    return ToolCall(call_id, "kb.lookup", json.dumps({"word": word}))


async def test_an_opened_conversation_is_found_by_its_id(driver):
    opened = await driver.model.open_conversation(PROFILE, {"channel": "web"})
    found = await driver.model.get_conversation(opened.id)
    assert found.id == opened.id
    assert found.assistant_id == PROFILE.id
    assert dict(found.metadata) == {"channel": "web"}


async def test_an_unknown_conversation_is_not_found(driver):
    with pytest.raises(NotFoundError):
        await driver.model.get_conversation(driver.unknown_conversation_id)


async def test_a_text_step_streams_deltas_that_make_the_message(driver):
    conversation = await driver.model.open_conversation(PROFILE)
    driver.says("The answer is forty-two.")
    events = await step(driver, conversation, UserInput("question"))
    deltas = "".join(e.text for e in events if isinstance(e, ModelTextDelta))
    assert deltas == "The answer is forty-two."
    assert [e for e in events if isinstance(e, ModelMessage)] == [
        ModelMessage("The answer is forty-two.")
    ]
    assert not [e for e in events if isinstance(e, ModelToolCall)]


async def test_a_tool_step_then_its_results_continue_the_turn(driver):
    conversation = await driver.model.open_conversation(PROFILE)
    driver.calls(lookup("ubiquity", "call_c1"), lookup("zeal", "call_c2"))
    events = await step(driver, conversation, UserInput("define two words"))
    calls = [e.call for e in events if isinstance(e, ModelToolCall)]
    assert [(c.id, c.name, json.loads(c.arguments)) for c in calls] == [
        ("call_c1", "kb.lookup", {"word": "ubiquity"}),
        ("call_c2", "kb.lookup", {"word": "zeal"}),
    ]
    driver.says("Both defined.")
    outcomes = tuple(ToolOutcome(c, OutcomeStatus.OK, '"a definition"') for c in calls)
    events = await step(driver, conversation, ToolResults(outcomes))
    assert ModelMessage("Both defined.") in events


async def test_history_holds_the_user_and_assistant_messages_in_order(driver):
    conversation = await driver.model.open_conversation(PROFILE)
    driver.says("Hello!")
    await step(driver, conversation, UserInput("hi"))
    driver.calls(lookup("zeal", "call_h1"))
    await step(driver, conversation, UserInput("define zeal"))
    driver.says("Zeal is eagerness.")
    call = lookup("zeal", "call_h1")
    await step(driver, conversation, ToolResults((ToolOutcome(call, OutcomeStatus.OK, '"x"'),)))
    assert await driver.model.history(conversation.id) == [
        Message(Role.USER, "hi"),
        Message(Role.ASSISTANT, "Hello!"),
        Message(Role.USER, "define zeal"),
        Message(Role.ASSISTANT, "Zeal is eagerness."),
    ]


async def test_a_step_that_breaks_mid_stream_leaves_the_conversation_usable(driver):
    conversation = await driver.model.open_conversation(PROFILE)
    driver.breaks_mid_stream("This will not finish")
    received: list[Any] = []

    async def consume():
        async for e in driver.model.stream_step(conversation, PROFILE, UserInput("hi"), ()):
            received.append(e)  # noqa: PERF401 -- kept as they come, up to the failure

    with pytest.raises(UpstreamError):
        await consume()
    assert any(isinstance(e, ModelTextDelta) for e in received)
    driver.says("Back on track.")
    events = await step(driver, conversation, UserInput("again"))
    assert ModelMessage("Back on track.") in events
    history = await driver.model.history(conversation.id)
    assert history[-2:] == [Message(Role.USER, "again"), Message(Role.ASSISTANT, "Back on track.")]


async def test_calls_left_unanswered_are_repaired_by_the_next_step(driver):
    conversation = await driver.model.open_conversation(PROFILE)
    driver.calls(lookup("lost", "call_r1"), lookup("gone", "call_r2"))
    await step(driver, conversation, UserInput("define lost and gone"))
    # The run died before the tool outputs went back; the next turn must still work.
    driver.says("Where were we?")
    events = await step(driver, conversation, UserInput("hello?"))
    assert ModelMessage("Where were we?") in events
    driver.says("Still here.")
    assert ModelMessage("Still here.") in await step(driver, conversation, UserInput("and now?"))
    history = await driver.model.history(conversation.id)
    assert history[-2:] == [Message(Role.USER, "and now?"), Message(Role.ASSISTANT, "Still here.")]
