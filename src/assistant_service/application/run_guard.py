"""Watching over a run while it lives: its lease kept alive, requests to cancel it heard."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, TypeVar

import anyio
import attrs

from assistant_service.domain.errors import AssistantServiceError

if TYPE_CHECKING:
    from assistant_service.domain.leases import Lease
    from assistant_service.ports.run_state import RunLock

T = TypeVar("T")

log = logging.getLogger(__name__)

# Renew once a third of the ttl has passed: two renewals can fail or be slow
# before the lease lapses.
RENEW_FRACTION = 1 / 3
# How often a run asks the shared store whether another instance cancelled it.
CANCEL_POLL_INTERVAL = 0.5


class RunCancelledSignal(Exception):  # noqa: N818 -- a signal, not an error
    """Someone asked the run to stop: the run loop ends it as cancelled."""


@attrs.define
class RunGuard:
    """Renews ``lease`` through ``lock`` before it lapses, and hears cancel requests.

    The run loop calls :meth:`tick` at every event (cheap: a clock read and a
    flag until a renewal or a cancel poll is due) and runs long waits (a tool
    round) through :meth:`beside`, which does the same in a task of its own
    meanwhile. A renewal that fails (``LeaseLostError``,
    ``StateStoreUnavailableError``) ends the run: what it would write next is
    refused anyway once another run took over. A cancel request (``cancel()``
    in this process, or ``remote_cancelled()`` true) raises
    :class:`RunCancelledSignal`.
    """

    _lock: RunLock = attrs.field(alias="lock")
    lease: Lease
    _remote_cancelled: Callable[[], Awaitable[bool]] | None = attrs.field(
        alias="remote_cancelled", default=None
    )
    # Called after each renewal: the run's record lives as long as its lease.
    _heartbeat: Callable[[], Awaitable[None]] | None = attrs.field(alias="heartbeat", default=None)
    _clock: Callable[[], float] = attrs.field(alias="clock", default=time.monotonic)
    _renewed_at: float = attrs.field(init=False)
    _polled_at: float = attrs.field(init=False)
    _cancelled: bool = attrs.field(default=False, init=False)
    # Made only while a long wait runs beside the guard (see :meth:`beside`): most
    # runs never wait on it, and an event per run showed in every turn's profile.
    _cancel_heard: anyio.Event | None = attrs.field(default=None, init=False)

    def __attrs_post_init__(self) -> None:
        self._renewed_at = self._polled_at = self._clock()

    @property
    def interval(self) -> float:
        return self.lease.ttl * RENEW_FRACTION

    def cancel(self) -> None:
        """Ask the run to stop (from this process): it stops at its next check."""
        self._cancelled = True
        if self._cancel_heard is not None:
            self._cancel_heard.set()

    async def tick(self) -> None:
        """Renew the lease if due, check for a cancel request; raise what either found."""
        if self._cancelled:
            raise RunCancelledSignal
        now = self._clock()
        if now - self._renewed_at >= self.interval:
            await self._renew()
        if self._remote_cancelled is not None and now - self._polled_at >= CANCEL_POLL_INTERVAL:
            self._polled_at = now
            if await self._remote_cancelled():
                self.cancel()
                raise RunCancelledSignal

    async def beside(self, wait: Callable[[], Awaitable[T]]) -> T:
        """Await ``wait()`` while keeping the lease and listening for a cancel request.

        If a renewal fails or the run is cancelled, ``wait`` is cancelled and
        that error (or :class:`RunCancelledSignal`) raised.
        """
        failure: list[Exception] = []
        if self._cancel_heard is None:
            self._cancel_heard = anyio.Event()
            if self._cancelled:
                self._cancel_heard.set()
        heard = self._cancel_heard
        async with anyio.create_task_group() as group:

            async def watch() -> None:
                while True:
                    with anyio.move_on_after(self._next_check()):
                        await heard.wait()
                    try:
                        await self.tick()
                    except (AssistantServiceError, RunCancelledSignal) as error:
                        failure.append(error)
                        group.cancel_scope.cancel()  # cancels ``wait`` too
                        return

            group.start_soon(watch)
            try:
                # Awaited here, not in a child task: its own errors propagate as they are.
                outcome = await wait()
            finally:
                group.cancel_scope.cancel()
        if failure:
            raise failure[0]
        return outcome

    def _next_check(self) -> float:
        due = self._renewed_at + self.interval
        if self._remote_cancelled is not None:
            due = min(due, self._polled_at + CANCEL_POLL_INTERVAL)
        return max(0.0, due - self._clock())

    async def _renew(self) -> None:
        await self._lock.renew(self.lease)
        self._renewed_at = self._clock()
        if self._heartbeat is not None:
            await self._heartbeat()


@attrs.define
class LeaseRelease:
    """Releases a run's lease once: when the run ends, or else when its block exits."""

    _lock: RunLock = attrs.field(alias="lock")
    lease: Lease
    released: bool = attrs.field(default=False, init=False)

    async def release(self) -> None:
        """Release the lease now (once); raises what the store raised (the exit tries again)."""
        if not self.released:
            await self._lock.release(self.lease)
            self.released = True


@asynccontextmanager
async def released_at_exit(
    lock: RunLock, lease: Lease, give_up_after: float
) -> AsyncIterator[LeaseRelease]:
    """Release ``lease`` when the block ends, however it ends (even when cancelled).

    Unless the block released it already through the :class:`LeaseRelease` it is
    given (a run frees its conversation as it ends): a second release would be a
    round trip to the shared store for nothing. A release that fails or takes
    longer than ``give_up_after`` seconds is given up: the lease lapses at its
    ttl, and the conversation is free again then.
    """
    handle = LeaseRelease(lock=lock, lease=lease)
    try:
        yield handle
    finally:
        if not handle.released:
            with anyio.move_on_after(give_up_after, shield=True):
                try:
                    await handle.release()
                except AssistantServiceError as error:
                    log.warning(
                        "lease.release_failed",
                        extra={
                            "conversation_id": lease.conversation_id,
                            "run_id": lease.holder,
                            "error_code": error.code,
                        },
                    )
