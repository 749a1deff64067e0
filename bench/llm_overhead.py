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
from typing import Any, cast

import attrs
import openai
import structlog

from assistant_service.adapters.llm.openai._client import make_openai_client
from assistant_service.adapters.llm.openai._tools import function_tools, responses_tool
from assistant_service.adapters.llm.openai.assistants._legacy_sdk import deprecated_api
from assistant_service.adapters.llm.openai.assistants._model import OpenAIAssistantsModel
from assistant_service.adapters.llm.openai.chat._model import OpenAIChatModel
from assistant_service.adapters.llm.openai.responses._model import OpenAIResponsesModel
from assistant_service.domain.models import AssistantProfile
from assistant_service.domain.steps import ModelToolCall, ToolResults, UserInput
from assistant_service.domain.tools import OutcomeStatus, ToolCall, ToolOutcome, ToolSpec
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
        tools = [responses_tool(spec) for spec in TOOLS]
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


# Chat Completions and Assistants: a text turn, and a turn with one tool round
# (the model calls the tool, its output goes back, the model answers).
TOOL_PROMPT = "Weather in Paris?"
BENCH_CALL = ("call_bench", "weather__get_forecast", '{"city": "Paris"}')
TOOL_OUTPUT = '"sunny"'


def _adapter_turns(backend: str, prompt: str) -> Callable[[Env], Awaitable[TurnFn]]:
    async def setup(env: Env) -> TurnFn:
        model: Any
        if backend == "chat":
            model, profile = OpenAIChatModel(client=env.client), PROFILE
        else:
            model, profile = OpenAIAssistantsModel(client=env.client), ASSISTANTS_PROFILE
        conversation = await model.open_conversation(profile)
        count = 0

        async def events(step: Any) -> list[Any]:
            async with aclosing(model.stream_step(conversation, profile, step, TOOLS)) as stream:
                return [event async for event in stream]

        async def turn() -> None:
            nonlocal conversation, count
            count += 1
            if count % TURNS_PER_CONVERSATION == 0:
                conversation = await model.open_conversation(profile)
            calls = [
                e.call for e in await events(UserInput(prompt)) if isinstance(e, ModelToolCall)
            ]
            if calls:
                await events(ToolResults(tuple(_ok(call) for call in calls)))

        return turn

    return setup


def _ok(call: ToolCall) -> ToolOutcome:
    return ToolOutcome(call, OutcomeStatus.OK, TOOL_OUTPUT)


def _chat_bare(prompt: str) -> Callable[[Env], Awaitable[TurnFn]]:
    async def setup(env: Env) -> TurnFn:
        client = env.client
        tools: Any = function_tools(TOOLS)
        system = {"role": "system", "content": PROFILE.instructions}
        history: list[dict[str, Any]] = []
        count = 0

        async def complete(messages: list[dict[str, Any]]) -> dict[str, Any]:
            stream = await client.chat.completions.create(
                model=PROFILE.model,
                messages=cast("Any", [system, *messages]),
                tools=tools,
                stream=True,
                stream_options={"include_usage": True},
            )
            text: list[str] = []
            calls: dict[int, dict[str, Any]] = {}
            async with stream:
                async for chunk in stream:
                    for choice in chunk.choices:
                        text.append(choice.delta.content or "")
                        for piece in choice.delta.tool_calls or ():
                            call = calls.setdefault(piece.index, {"id": piece.id, "args": []})
                            call["name"] = call.get("name") or piece.function.name
                            call["args"].append(piece.function.arguments or "")
            answer: dict[str, Any] = {"role": "assistant", "content": "".join(text) or None}
            if calls:
                answer["tool_calls"] = [
                    {
                        "id": c["id"],
                        "type": "function",
                        "function": {"name": c["name"], "arguments": "".join(c["args"])},
                    }
                    for c in calls.values()
                ]
            return answer

        async def turn() -> None:
            nonlocal count
            count += 1
            if count % TURNS_PER_CONVERSATION == 0:
                history.clear()
            added: list[dict[str, Any]] = [{"role": "user", "content": prompt}]
            answer = await complete([*history, *added])
            added.append(answer)
            if "tool_calls" in answer:
                added.extend(
                    {"role": "tool", "tool_call_id": c["id"], "content": TOOL_OUTPUT}
                    for c in answer["tool_calls"]
                )
                added.append(await complete([*history, *added]))
            history.extend(added)

        return turn

    return setup


def _assistants_bare(prompt: str) -> Callable[[Env], Awaitable[TurnFn]]:
    async def setup(env: Env) -> TurnFn:
        threads: Any = env.client.beta.threads
        tools: Any = function_tools(TOOLS)
        thread_id = ""
        count = 0

        async def new_thread() -> None:
            nonlocal thread_id
            with deprecated_api():
                created = threads.create(metadata={"assistant_id": PROFILE.id})
            thread_id = (await created).id

        async def run(pending: Any) -> Any:
            """Read a run's stream; the run if it waits for tool outputs."""
            waiting = None
            async with await pending as stream:
                async for event in stream:
                    if event.event == "thread.run.requires_action":
                        waiting = event.data
            return waiting

        async def turn() -> None:
            nonlocal count
            count += 1
            if count % TURNS_PER_CONVERSATION == 0:
                await new_thread()
            with deprecated_api():
                message = threads.messages.create(thread_id, role="user", content=prompt)
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
            waiting = await run(created)
            if waiting is not None:
                calls = waiting.required_action.submit_tool_outputs.tool_calls
                outputs = [{"tool_call_id": c.id, "output": TOOL_OUTPUT} for c in calls]
                with deprecated_api():
                    submitted = threads.runs.submit_tool_outputs(
                        waiting.id, thread_id=thread_id, tool_outputs=outputs, stream=True
                    )
                await run(submitted)

        await new_thread()
        return turn

    return setup


CASES: list[Case] = [
    Case(
        "responses/conversations",
        _responses_adapter("conversations"),
        _responses_bare("conversations"),
    ),
    Case("responses/local", _responses_adapter("local"), _responses_bare("local")),
    Case("assistants", _adapter_turns("assistants", "hi"), _assistants_bare("hi")),
    Case(
        "assistants/tool round",
        _adapter_turns("assistants", TOOL_PROMPT),
        _assistants_bare(TOOL_PROMPT),
    ),
    Case("chat", _adapter_turns("chat", "hi"), _chat_bare("hi")),
    Case("chat/tool round", _adapter_turns("chat", TOOL_PROMPT), _chat_bare(TOOL_PROMPT)),
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
    fake.extensions["assistants"].create_assistant({"model": "m"}, assistant_id="asst_bench")
    # Assistants and Chat call the tool once when asked about the weather, then answer.
    fake.extensions["assistants"].default = lambda kind, text: (
        RunStep(calls=(BENCH_CALL,))
        if kind == "create" and text == TOOL_PROMPT
        else RunStep(text=ANSWER)
    )
    fake.extensions["chat"].default = lambda body: (
        ChatStep(calls=(BENCH_CALL,))
        if body["messages"][-1] == {"role": "user", "content": TOOL_PROMPT}
        else ChatStep(text=ANSWER)
    )
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
