"""Keeping a run's lease alive while the run lives."""

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


@attrs.define
class LeaseKeeper:
    """Renews ``lease`` through ``lock`` before it lapses.

    The run loop calls :meth:`tick` at every event (cheap: a clock read until a
    renewal is due) and runs long waits (a tool round) through :meth:`beside`,
    which renews in a task of its own meanwhile. A renewal that fails
    (``LeaseLostError``, ``StateStoreUnavailableError``) ends the run: what it
    would write next is refused anyway once another run took over.
    """

    _lock: RunLock = attrs.field(alias="lock")
    lease: Lease
    _clock: Callable[[], float] = attrs.field(alias="clock", default=time.monotonic)
    _renewed_at: float = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self._renewed_at = self._clock()

    @property
    def interval(self) -> float:
        return self.lease.ttl * RENEW_FRACTION

    async def tick(self) -> None:
        """Renew the lease if a renewal is due; raise what the renewal raised."""
        if self._clock() - self._renewed_at >= self.interval:
            await self._renew()

    async def beside(self, wait: Callable[[], Awaitable[T]]) -> T:
        """Await ``wait()`` while renewing the lease every interval.

        If a renewal fails, ``wait`` is cancelled and the renewal's error raised.
        """
        failure: list[AssistantServiceError] = []
        async with anyio.create_task_group() as group:

            async def renew_until_cancelled() -> None:
                while True:
                    await anyio.sleep(max(0.0, self._renewed_at + self.interval - self._clock()))
                    try:
                        await self._renew()
                    except AssistantServiceError as error:
                        failure.append(error)
                        group.cancel_scope.cancel()  # cancels ``wait`` too
                        return

            group.start_soon(renew_until_cancelled)
            try:
                # Awaited here, not in a child task: its own errors propagate as they are.
                outcome = await wait()
            finally:
                group.cancel_scope.cancel()
        if failure:
            raise failure[0]
        return outcome

    async def _renew(self) -> None:
        await self._lock.renew(self.lease)
        self._renewed_at = self._clock()


@asynccontextmanager
async def released_at_exit(
    lock: RunLock, lease: Lease, give_up_after: float
) -> AsyncIterator[None]:
    """Release ``lease`` when the block ends, however it ends (even when cancelled).

    A release that fails or takes longer than ``give_up_after`` seconds is given up: the
    lease lapses at its ttl, and the conversation is free again then.
    """
    try:
        yield
    finally:
        with anyio.CancelScope(shield=True), anyio.move_on_after(give_up_after):
            try:
                await lock.release(lease)
            except AssistantServiceError as error:
                log.warning(
                    "lease.release_failed",
                    extra={
                        "conversation_id": lease.conversation_id,
                        "run_id": lease.holder,
                        "error_code": error.code,
                    },
                )
