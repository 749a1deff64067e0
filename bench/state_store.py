"""What shared state costs a turn: the state stores on this machine.

Prints, for the in-memory store, Redis and Firestore: microseconds per append
of one item and per read of the whole history at 10, 100 and 1,000 items, and
per lock acquire + release; then, per store, microseconds per whole chat turn
through the facade with the lock, and that turn's overhead over the in-memory
store's. Redis and Firestore run on 127.0.0.1 (started here:
``redis-server`` and ``gcloud emulators firestore``, unless ``REDIS_URL`` or
``FIRESTORE_EMULATOR_HOST`` names one already running), so their figures are
loopback round trips plus the adapters' own work; a managed service adds its
network. The Firestore emulator is not Firestore: read its figures as the
adapter's round trips, not as the service's latency. A backend whose program is
missing is skipped with a note. Firestore runs a tenth of the rounds (at least 3).

A turn is ``service.chat`` on ``bootstrap(model=ScriptedModel(store=store, ...),
state=store)``: the model gives a fixed one-line reply and calls no tool, so the
turn's state work is the conversation read, lease acquire, history read, fenced
append (the user message and the reply) and lease release, plus the facade's
own work, which every store shares. Conversations are opened untimed and take
``TURNS_PER_CONVERSATION`` turns each, so a turn reads a small history (0 to 8
items). After ``WARMUP_TURNS`` untimed turns, each of ``rounds`` turns is timed
alone; the figure is the median (the mean is printed beside it).

Usage: ``PYTHONPATH=src:tests python bench/state_store.py [--rounds 200]
[--backends memory,redis,firestore]``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import anyio

from assistant_service import bootstrap
from assistant_service.adapters.llm.scripted import ScriptedModel, ScriptedStep, StepRequest, reply
from assistant_service.adapters.state.memory import InMemoryStateStore
from assistant_service.domain.models import Conversation, Message
from support.servers import ServerMissingError, running_firestore_emulator, running_redis

SIZES = (10, 100, 1_000)
# A user message as the Responses backend stores it: about 200 bytes of JSON.
ITEM = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "x" * 150}]}
# A chat turn: a short question, a fixed short reply; a fresh conversation every few turns.
TURN_MESSAGE = "What is the forecast for Paris tomorrow?"
TURN_REPLY = "Sunny, 24 degrees, light wind from the west."
TURNS_PER_CONVERSATION = 5
WARMUP_TURNS = 5


@contextlib.contextmanager
def redis_url() -> Iterator[str]:
    given = os.environ.get("REDIS_URL")
    if given:
        yield given
        return
    with running_redis() as server:
        yield server.url


@contextlib.contextmanager
def firestore_host() -> Iterator[str]:
    given = os.environ.get("FIRESTORE_EMULATOR_HOST")
    if given:
        yield given
        return
    with running_firestore_emulator() as host:
        yield host


@contextlib.asynccontextmanager
async def open_store(backend: str, stack: contextlib.ExitStack) -> AsyncIterator[Any]:
    """A store of ``backend`` on its own prefix; servers are started on ``stack``."""
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    if backend == "memory":
        yield InMemoryStateStore()
        return
    if backend == "redis":
        from assistant_service.adapters.state.redis import RedisStateStore  # noqa: PLC0415

        store: Any = RedisStateStore.from_url(stack.enter_context(redis_url()), prefix=prefix)
    else:
        from assistant_service.adapters.state.firestore import FirestoreStateStore  # noqa: PLC0415

        os.environ["FIRESTORE_EMULATOR_HOST"] = stack.enter_context(firestore_host())
        store = FirestoreStateStore.from_environment("bench-project", prefix=f"{prefix}-")
    try:
        yield store
    finally:
        await store.aclose()


async def per_call(rounds: int, call: Callable[[int], Awaitable[object]]) -> float:
    """Microseconds per ``await call(n)``, over ``rounds`` calls after two to warm up."""
    for n in range(2):
        await call(n)
    started = time.perf_counter()
    for n in range(rounds):
        await call(n)
    return (time.perf_counter() - started) / rounds * 1e6


async def measure(store: Any, rounds: int) -> list[str]:
    lines = []
    for size in SIZES:
        conversation = Conversation.new("bench")
        await store.create(conversation)
        for start in range(0, size, 100):
            await store.append(conversation.id, [ITEM] * min(100, size - start))
        # Reads first, so they see exactly ``size`` items; appends then add a few.
        read = await per_call(rounds, lambda _n, c=conversation: store.items(c.id))
        append = await per_call(rounds, lambda _n, c=conversation: store.append(c.id, [ITEM]))
        lines.append(f"  {size:>5} items: append {append:9.1f} µs, read history {read:9.1f} µs")

    async def lock(n: int) -> None:
        await store.release(await store.acquire("conv_bench_lock", f"run-{n}", 30))

    lines.append(f"  lock acquire + release: {await per_call(rounds, lock):9.1f} µs")
    return lines


def fixed_reply(_request: StepRequest, _history: list[Message]) -> ScriptedStep:
    return reply(TURN_REPLY)


async def turn_times(store: Any, turns: int) -> list[float]:
    """Microseconds of each of ``turns`` chat turns through the facade on ``store``."""
    model = ScriptedModel(store=store, responder=fixed_reply)
    service = bootstrap(model=model, state=store)
    conversation_id = ""
    times: list[float] = []
    for n in range(WARMUP_TURNS + turns):
        if n % TURNS_PER_CONVERSATION == 0:
            conversation_id = await service.start_conversation()  # untimed
        started = time.perf_counter()
        result = await service.chat(conversation_id, TURN_MESSAGE)
        elapsed = (time.perf_counter() - started) * 1e6
        if result.texts != [TURN_REPLY]:  # a turn that did not run would time nothing
            raise RuntimeError(f"unexpected reply from the scripted model: {result.texts!r}")
        if n >= WARMUP_TURNS:
            times.append(elapsed)
    return times


def turn_table(medians: dict[str, float]) -> list[str]:
    """Median µs per turn for each store, and its overhead over the in-memory store's."""
    header = "turn with the lock (µs per chat turn through the facade, median;"
    lines = [f"{header} {TURNS_PER_CONVERSATION} turns per conversation):"]
    baseline = medians.get("memory")
    for backend, median in medians.items():
        if backend == "memory":
            versus = "baseline"
        elif baseline is None:
            versus = "overhead n/a: memory not run"
        else:
            versus = f"overhead {median - baseline:+9.1f} µs, x{median / baseline:.1f}"
        lines.append(f"  {backend:<10} {median:9.1f} µs  ({versus})")
    return lines


async def main(rounds: int, backends: list[str]) -> None:
    medians: dict[str, float] = {}
    with contextlib.ExitStack() as stack:
        for backend in backends:
            scaled = max(3, rounds // 10) if backend == "firestore" else rounds
            try:
                async with open_store(backend, stack) as store:
                    lines = await measure(store, scaled)
                    times = await turn_times(store, scaled)
            except ServerMissingError as error:
                print(f"{backend}: skipped ({error})")
                continue
            medians[backend] = statistics.median(times)
            lines.append(
                f"  turn with the lock: {medians[backend]:9.1f} µs median,"
                f" {statistics.fmean(times):9.1f} µs mean over {len(times)} turns"
            )
            print(f"{backend} ({scaled} rounds):")
            for line in lines:
                print(line)
    for line in turn_table(medians):
        print(line)


def run() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--backends", default="memory,redis,firestore")
    arguments = parser.parse_args()
    anyio.run(main, arguments.rounds, arguments.backends.split(","))


if __name__ == "__main__":
    run()
