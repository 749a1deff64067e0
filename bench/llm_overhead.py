"""Per-turn overhead of the OpenAI adapters over bare SDK calls making the same requests.

Both sides talk to the same loopback fake (tests/fakeopenai, run in a child
process so it does not share the GIL with the client) through the same shared
client, so the server's time cancels out: the difference is what the adapter
adds (state keeping, event translation, logging, error mapping). Blocks of
turns alternate between the two sides; the median block counts.

    PYTHONPATH=src:tests python bench/llm_overhead.py [--turns 400] [--blocks 8]

To add an adapter: write two ``setup`` coroutines,
each taking the ``Env`` and returning an async ``turn()`` function (one user turn
with the adapter; the same HTTP requests with the bare SDK), and append a
``Case`` to ``CASES``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import multiprocessing
import statistics
import time
from collections.abc import Awaitable, Callable
from contextlib import aclosing
from typing import Any

import attrs
import openai
import structlog

from assistant_service.adapters.llm.function_tools import function_tools
from assistant_service.adapters.llm.legacy_sdk import deprecated_api
from assistant_service.adapters.llm.openai_assistants import OpenAIAssistantsModel
from assistant_service.adapters.llm.openai_chat import OpenAIChatModel
from assistant_service.adapters.llm.openai_responses import OpenAIResponsesModel, function_tool
from assistant_service.adapters.llm.openai_support import make_openai_client
from assistant_service.domain.models import AssistantProfile
from assistant_service.domain.steps import UserInput
from assistant_service.domain.tools import ToolSpec
from fakeopenai import API_KEY, start_fake_openai
from fakeopenai.assistants import RunStep
from fakeopenai.chat import ChatStep
from fakeopenai.turns import Turn

ANSWER = "Hello there, this is a short answer of about a dozen words in all."
TURNS_PER_CONVERSATION = 8  # bounds the history the local mode resends
PROFILE = AssistantProfile(id="bench", model="gpt-bench", instructions="Be brief.")
ASSISTANTS_PROFILE = attrs.evolve(PROFILE, remote_id="asst_bench")
TOOLS = (
    ToolSpec(
        "weather.get_forecast",
        "The forecast.",
        {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    ),
)

TurnFn = Callable[[], Awaitable[None]]


@attrs.define
class Env:
    client: openai.AsyncOpenAI


@attrs.frozen
class Case:
    name: str
    adapter: Callable[[Env], Awaitable[TurnFn]]
    bare: Callable[[Env], Awaitable[TurnFn]]


def _responses_adapter(state: str) -> Callable[[Env], Awaitable[TurnFn]]:
    async def setup(env: Env) -> TurnFn:
        model = OpenAIResponsesModel(env.client, state=state)
        conversation = await model.open_conversation(PROFILE)
        count = 0

        async def turn() -> None:
            nonlocal conversation, count
            count += 1
            if count % TURNS_PER_CONVERSATION == 0:
                conversation = await model.open_conversation(PROFILE)
            async for _ in model.stream_step(conversation, PROFILE, UserInput("hi"), TOOLS):
                pass

        return turn

    return setup


def _responses_bare(state: str) -> Callable[[Env], Awaitable[TurnFn]]:
    async def setup(env: Env) -> TurnFn:
        client = env.client
        tools = [function_tool(spec) for spec in TOOLS]
        history: list[dict[str, Any]] = []
        conversation_id = ""
        count = 0

        async def new_conversation() -> None:
            nonlocal conversation_id
            history.clear()
            if state == "conversations":
                created = await client.conversations.create(metadata={"assistant_id": "bench"})
                conversation_id = created.id

        async def turn() -> None:
            nonlocal count
            count += 1
            if count % TURNS_PER_CONVERSATION == 0:
                await new_conversation()
            user = {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "hi"}],
            }
            params: dict[str, Any] = (
                {"conversation": conversation_id, "input": [user]}
                if state == "conversations"
                else {"store": False, "input": [*history, user]}
            )
            stream = await client.responses.create(
                model=PROFILE.model,
                instructions=PROFILE.instructions,
                tools=tools,
                stream=True,
                **params,
            )
            texts = []
            async for event in stream:
                if event.type == "response.output_item.done" and event.item.type == "message":
                    texts.extend(part.text for part in event.item.content)
            if state == "local":  # the items the adapter keeps, so the requests are the same
                parts = [{"type": "output_text", "text": text} for text in texts]
                history.extend([user, {"type": "message", "role": "assistant", "content": parts}])

        await new_conversation()
        return turn

    return setup


def _chat_adapter(env: Env) -> Awaitable[TurnFn]:
    return _model_turns(OpenAIChatModel(client=env.client), PROFILE)


def _assistants_adapter(env: Env) -> Awaitable[TurnFn]:
    return _model_turns(OpenAIAssistantsModel(client=env.client), ASSISTANTS_PROFILE)


async def _model_turns(model: Any, profile: AssistantProfile) -> TurnFn:
    conversation = await model.open_conversation(profile)
    count = 0

    async def turn() -> None:
        nonlocal conversation, count
        count += 1
        if count % TURNS_PER_CONVERSATION == 0:
            conversation = await model.open_conversation(profile)
        async with aclosing(model.stream_step(conversation, profile, UserInput("hi"), TOOLS)) as ev:
            async for _ in ev:
                pass

    return turn


async def _chat_bare(env: Env) -> TurnFn:
    client = env.client
    tools: Any = function_tools(TOOLS)
    system = {"role": "system", "content": PROFILE.instructions}
    history: list[dict[str, Any]] = []
    count = 0

    async def turn() -> None:
        nonlocal count
        count += 1
        if count % TURNS_PER_CONVERSATION == 0:
            history.clear()
        user = {"role": "user", "content": "hi"}
        stream = await client.chat.completions.create(
            model=PROFILE.model,
            messages=[system, *history, user],  # type: ignore[list-item]
            tools=tools,
            stream=True,
            stream_options={"include_usage": True},
        )
        async with stream:
            text = [c.choices[0].delta.content or "" async for c in stream if c.choices]
        history.extend([user, {"role": "assistant", "content": "".join(text)}])

    return turn


async def _assistants_bare(env: Env) -> TurnFn:
    threads: Any = env.client.beta.threads
    tools: Any = function_tools(TOOLS)
    thread_id = ""
    count = 0

    async def new_thread() -> None:
        nonlocal thread_id
        with deprecated_api():
            created = threads.create(metadata={"assistant_id": PROFILE.id})
        thread_id = (await created).id

    async def turn() -> None:
        nonlocal count
        count += 1
        if count % TURNS_PER_CONVERSATION == 0:
            await new_thread()
        with deprecated_api():
            message = threads.messages.create(thread_id, role="user", content="hi")
        await message
        with deprecated_api():
            created = threads.runs.create(
                thread_id,
                assistant_id=ASSISTANTS_PROFILE.remote_id,
                model=PROFILE.model,
                instructions=PROFILE.instructions,
                tools=tools,
                stream=True,
            )
        stream = await created
        async with stream:
            async for _ in stream:
                pass

    await new_thread()
    return turn


CASES: list[Case] = [
    Case(
        "responses/conversations",
        _responses_adapter("conversations"),
        _responses_bare("conversations"),
    ),
    Case("responses/local", _responses_adapter("local"), _responses_bare("local")),
    Case("assistants", _assistants_adapter, _assistants_bare),
    Case("chat", _chat_adapter, _chat_bare),
]


async def _block(turn: TurnFn, turns: int) -> float:
    started = time.perf_counter()
    for _ in range(turns):
        await turn()
    return (time.perf_counter() - started) / turns * 1e6


async def measure(case: Case, env: Env, turns: int, blocks: int) -> tuple[float, float]:
    adapter, bare = await case.adapter(env), await case.bare(env)
    await _block(adapter, 20)  # warm up: imports, connections, caches
    await _block(bare, 20)
    adapter_times, bare_times = [], []
    for _ in range(blocks):
        adapter_times.append(await _block(adapter, turns // blocks))
        bare_times.append(await _block(bare, turns // blocks))
    return statistics.median(adapter_times), statistics.median(bare_times)


def serve(connection: Any) -> None:
    """The child process: the fake, answering every response with ``ANSWER``."""
    fake = start_fake_openai()
    fake.responses.default = lambda _request: Turn(text=ANSWER)
    fake.extensions["assistants"].default = RunStep(text=ANSWER)
    fake.extensions["chat"].default = ChatStep(text=ANSWER)
    connection.send(fake.base_url)
    connection.recv()  # until the parent is done
    fake.stop()


async def main(base_url: str, turns: int, blocks: int) -> None:
    # Log lines would dominate the figures; the adapter still builds them.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    client = make_openai_client(api_key=API_KEY, base_url=base_url, max_retries=0)
    try:
        env = Env(client)
        print(
            f"{'case':<26}{'adapter us/turn':>17}{'bare SDK us/turn':>18}"
            f"{'ratio':>8}{'overhead us':>13}"
        )
        for case in CASES:
            adapter, bare = await measure(case, env, turns, blocks)
            print(
                f"{case.name:<26}{adapter:>17.0f}{bare:>18.0f}"
                f"{adapter / bare:>8.2f}{adapter - bare:>13.0f}"
            )
    finally:
        await client.close()


def run(turns: int, blocks: int) -> None:
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    server = context.Process(target=serve, args=(child,), daemon=True)
    server.start()
    try:
        asyncio.run(main(parent.recv(), turns, blocks))
    finally:
        parent.send("stop")
        server.join(timeout=10)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=600, help="turns per side and case")
    parser.add_argument("--blocks", type=int, default=30, help="alternating blocks of turns")
    arguments = parser.parse_args()
    run(arguments.turns, arguments.blocks)
