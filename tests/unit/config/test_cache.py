"""The TTL cache: expiry on an injected clock, bounded size."""

from __future__ import annotations

import pytest

from assistant_service.adapters.cache import TtlCache


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_value_lives_exactly_ttl_seconds():
    clock = Clock()
    cache: TtlCache[str, int] = TtlCache(10.0, clock=clock)
    cache.set("a", 1)
    clock.now = 9.999
    assert cache.get("a") == 1
    clock.now = 10.0
    assert cache.get("a") is None


def test_setting_again_restarts_the_ttl():
    clock = Clock()
    cache: TtlCache[str, int] = TtlCache(10.0, clock=clock)
    cache.set("a", 1)
    clock.now = 8
    cache.set("a", 2)
    clock.now = 15
    assert cache.get("a") == 2


def test_the_oldest_entry_goes_when_full():
    cache: TtlCache[str, int] = TtlCache(10.0, max_entries=2, clock=Clock())
    for key, value in [("a", 1), ("b", 2), ("c", 3)]:
        cache.set(key, value)
    assert [cache.get(k) for k in "abc"] == [None, 2, 3]


def test_a_zero_ttl_caches_nothing_and_discard_and_clear_forget():
    cache: TtlCache[str, int] = TtlCache(0, clock=Clock())
    cache.set("a", 1)
    assert cache.get("a") is None
    cache = TtlCache(5, clock=Clock())
    cache.set("a", 1)
    cache.set("b", 2)
    cache.discard("a")
    assert cache.get("a") is None
    assert cache.get("b") == 2
    cache.clear()
    assert cache.get("b") is None


def test_a_negative_ttl_is_refused():
    with pytest.raises(ValueError, match="ttl"):
        TtlCache(-1)


@pytest.mark.anyio
async def test_concurrent_misses_load_once_and_errors_store_nothing():
    import anyio  # noqa: PLC0415

    cache: TtlCache[str, int] = TtlCache(10.0, clock=Clock())
    calls = []

    async def load():
        calls.append(1)
        await anyio.sleep(0.01)
        return 7

    results = []

    async def get():
        results.append(await cache.get_or_load("a", load))

    async with anyio.create_task_group() as group:
        for _ in range(5):
            group.start_soon(get)
    assert (results, len(calls)) == ([7] * 5, 1)
    assert cache._loading == {}

    async def fail():
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await cache.get_or_load("b", fail)
    assert cache.get("b") is None
    assert cache._loading == {}
