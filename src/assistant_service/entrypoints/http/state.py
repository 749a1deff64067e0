"""What the edge shares between requests: the run slots and the draining flag."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import anyio
import attrs

from assistant_service.entrypoints.http.errors import OverloadedError

RETRY_AFTER_SECONDS = 1.0


@attrs.define
class RunSlots:
    """Bounds the runs in flight in this process; past the bound a run is refused, not queued.

    Refusing (503 with ``Retry-After``) keeps latency bounded and lets a load
    balancer send the retry elsewhere.
    """

    limit: int
    # Told of every change (the metrics' gauge of slots in use).
    on_change: Callable[[int, int], None] | None = None
    _active: int = attrs.field(default=0, init=False)

    def __attrs_post_init__(self) -> None:
        self._changed()

    @property
    def active(self) -> int:
        return self._active

    def acquire(self) -> None:
        """Take a slot; raises :class:`OverloadedError` when none is free."""
        if self._active >= self.limit:
            raise OverloadedError(
                f"this server is running its maximum of {self.limit} runs; retry shortly",
                retry_after=RETRY_AFTER_SECONDS,
            )
        self._active += 1
        self._changed()

    def release(self) -> None:
        self._active = max(0, self._active - 1)
        self._changed()

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change(self._active, self.limit)

    @contextmanager
    def held_while_starting(self) -> Iterator[SlotClaim]:
        """Take a slot for a run that is starting; it goes back unless ``keep()`` was called.

        What keeps it (a stream, a background task) releases it when the run ends.
        """
        self.acquire()
        claim = SlotClaim()
        try:
            yield claim
        finally:
            if not claim.kept:
                self.release()


@attrs.define
class SlotClaim:
    kept: bool = False

    def keep(self) -> None:
        self.kept = True


@attrs.define
class EdgeState:
    """Per-app state: run slots, and the event set when the server starts shutting down.

    Once draining, ``/readyz`` answers 503 and idle WebSockets are closed; runs
    in flight finish. When the graceful timeout runs out the server sets
    ``stopping``, and every request still open is ended as if its client had left.
    """

    slots: RunSlots
    draining: anyio.Event = attrs.field(factory=anyio.Event)
    stopping: anyio.Event = attrs.field(factory=anyio.Event)

    def begin_draining(self) -> None:
        self.draining.set()

    def stop_now(self) -> None:
        self.draining.set()
        self.stopping.set()
