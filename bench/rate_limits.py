"""What a rate limit and a token budget cost a request: the ``limits`` storages on this machine.

Prints, for the in-memory storage and Redis: microseconds per admitted request
(a moving-window hit and its window's figures, for the ``RateLimit-*``
headers), per budget check (before a run starts) and per usage write (after
each model step; in the background, off the request's path), each the median of
``rounds`` calls (the mean beside it). Redis runs on 127.0.0.1 (started here,
unless ``REDIS_URL`` names one already running), so its figures are loopback
round trips plus the library's work; a managed Redis adds its network.

Usage: ``PYTHONPATH=src:tests python bench/rate_limits.py [--rounds 500]
[--backends memory,redis]``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator

import anyio
from limits.aio.storage import MemoryStorage, RedisStorage, Storage

from assistant_service.entrypoints.http.budgets import TokenBudgets
from assistant_service.entrypoints.http.limiting import RequestLimiter, parse_rate_limit


@contextlib.contextmanager
def redis_url() -> Iterator[str]:
    given = os.environ.get("REDIS_URL")
    if given:
        yield given
        return
    from support.servers import running_redis  # noqa: PLC0415 -- only when Redis is benched

    with running_redis() as server:
        yield server.url


def storage_for(backend: str, url: str | None) -> Storage:
    if backend == "memory":
        return MemoryStorage(wrap_exceptions=True)
    assert url is not None  # noqa: S101 -- main() passes one with redis
    return RedisStorage(
        "async+" + url,
        implementation="redispy",
        key_prefix=f"bench-{uuid.uuid4().hex[:8]}:limits",
        wrap_exceptions=True,
    )


async def timed(rounds: int, call: Callable[[int], Awaitable[object]]) -> tuple[float, float]:
    samples = []
    for index in range(rounds):
        started = time.perf_counter()
        await call(index)
        samples.append((time.perf_counter() - started) * 1e6)
    return statistics.median(samples), statistics.fmean(samples)


async def bench(backend: str, url: str | None, rounds: int) -> None:
    storage = storage_for(backend, url)
    # Never reached: every request is admitted, as on a healthy service.
    item = parse_rate_limit(f"{rounds * 10}/minute")
    limiter = RequestLimiter.on(storage, item)
    budgets = TokenBudgets.on(storage, {"bench": 10**12})
    callers = [f"key:caller-{i}" for i in range(50)]

    async def admit(index: int) -> object:
        return await limiter.admit(callers[index % len(callers)], item)

    async def check(_index: int) -> object:
        await budgets.check("bench")
        return None

    async def write(_index: int) -> object:
        budgets.spend("bench", 120)
        await budgets.flush()
        return None

    for name, call in (
        ("admit a request", admit),
        ("check a budget", check),
        ("write usage", write),
    ):
        await timed(min(rounds, 50), call)  # warm up: connections, scripts loaded
        median, mean = await timed(rounds, call)
        print(f"{backend:7} {name:16} {median:8.1f} µs median  {mean:8.1f} µs mean")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=500)
    parser.add_argument("--backends", default="memory,redis")
    args = parser.parse_args()
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(redis_url()) if "redis" in backends else None
        for backend in backends:
            anyio.run(bench, backend, url, args.rounds)


if __name__ == "__main__":
    main()
