"""A small time-to-live cache for adapters that read remote configuration and secrets."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

import anyio
import attrs

K = TypeVar("K")
V = TypeVar("V")

Clock = Callable[[], float]


@attrs.define
class TtlCache(Generic[K, V]):
    """Values that expire ``ttl`` seconds after they were stored.

    ``clock`` is injectable so tests move time instead of sleeping. At most
    ``max_entries`` values are kept; the oldest stored goes first. A ``ttl`` of
    0 disables caching. Not thread-safe: use it from one event loop.
    """

    ttl: float = attrs.field(validator=attrs.validators.ge(0))
    max_entries: int = attrs.field(default=1024, validator=attrs.validators.gt(0))
    clock: Clock = time.monotonic
    _entries: dict[K, tuple[float, V]] = attrs.field(factory=dict, init=False)
    # One lock per key being loaded, dropped when nobody waits: bounded by concurrency.
    _loading: dict[K, anyio.Lock] = attrs.field(factory=dict, init=False)

    async def get_or_load(self, key: K, load: Callable[[], Awaitable[V]]) -> V:
        """The fresh value under ``key``, else ``await load()``, stored.

        Concurrent misses on one key load once: the others wait and take the
        stored value (on a cold start, a burst of requests makes one remote call).
        An error from ``load`` is raised to that caller and nothing is stored.
        """
        value = self.get(key)
        if value is not None:
            return value
        lock = self._loading.setdefault(key, anyio.Lock())
        try:
            async with lock:
                value = self.get(key)
                if value is None:
                    value = await load()
                    self.set(key, value)
                return value
        finally:
            if not lock.locked() and lock.statistics().tasks_waiting == 0:
                self._loading.pop(key, None)

    def get(self, key: K) -> V | None:
        """The fresh value stored under ``key``, else ``None``."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires_at, value = entry
        if self.clock() >= expires_at:
            del self._entries[key]
            return None
        return value

    def set(self, key: K, value: V) -> None:
        """Store ``value`` under ``key`` for ``ttl`` seconds."""
        if self.ttl == 0:
            return
        self._entries.pop(key, None)
        while len(self._entries) >= self.max_entries:
            del self._entries[next(iter(self._entries))]
        self._entries[key] = (self.clock() + self.ttl, value)

    def discard(self, key: K) -> None:
        """Forget ``key``."""
        self._entries.pop(key, None)

    def clear(self) -> None:
        """Forget everything."""
        self._entries.clear()
