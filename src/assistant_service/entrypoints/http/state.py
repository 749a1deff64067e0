"""What the edge shares between requests: run slots, connections and the shutdown's stages."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import anyio
import attrs

from assistant_service.entrypoints.http.connections import Connections
from assistant_service.entrypoints.http.errors import OverloadedError, ShuttingDownError

T = TypeVar("T")

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
    """Per-app state: run slots, open connections, and the stages of a shutdown.

    ``draining`` (SIGTERM): ``/readyz`` answers 503, new runs are refused,
    idle WebSockets are closed; runs in flight go on. ``runs_ending`` (the
    graceful timeout ran out): runs still going end now, each answering its
    client with a ``shutting_down`` error (see :meth:`until_runs_end`).
    ``stopping`` (a moment later): every request still open is ended as if its
    client had left.
    """

    slots: RunSlots
    connections: Connections = attrs.field(factory=Connections)
    draining: anyio.Event = attrs.field(factory=anyio.Event)
    runs_ending: anyio.Event = attrs.field(factory=anyio.Event)
    stopping: anyio.Event = attrs.field(factory=anyio.Event)
    # The runs in until_runs_end, cancelled together by end_runs (no task per run).
    _runs: set[anyio.CancelScope] = attrs.field(factory=set, init=False)

    def begin_draining(self) -> None:
        self.draining.set()

    def end_runs(self) -> None:
        self.draining.set()
        self.runs_ending.set()
        for scope in list(self._runs):
            scope.cancel()

    def stop_now(self) -> None:
        self.end_runs()
        self.stopping.set()

    async def until_runs_end(self, function: Callable[[], Awaitable[T]]) -> T:
        """``await function()``, unless ``runs_ending`` comes first.

        Then ``function`` is cancelled (a run ends as when its client leaves)
        and :class:`ShuttingDownError` is raised for the caller to answer with.
        """
        if self.runs_ending.is_set():
            raise ShuttingDownError(_CUT)
        with anyio.CancelScope() as scope:
            self._runs.add(scope)
            try:
                return await function()
            finally:
                self._runs.discard(scope)
        raise ShuttingDownError(_CUT)


_CUT = "the server is shutting down and stopped the run; retry shortly"
