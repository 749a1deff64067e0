"""A run's lease is released once: by the run as it ends, or else when its block exits."""

from __future__ import annotations

import attrs
import pytest

from assistant_service.adapters.state.memory import InMemoryStateStore
from assistant_service.application.run_guard import released_at_exit
from assistant_service.domain.errors import StateStoreUnavailableError
from assistant_service.domain.leases import Lease

pytestmark = pytest.mark.anyio


@attrs.define
class CountingLock:
    """The in-memory lock, counting releases; the first ``failures`` of them fail."""

    store: InMemoryStateStore = attrs.field(factory=InMemoryStateStore)
    failures: int = 0
    releases: int = 0

    async def acquire(self, conversation_id: str, holder: str, ttl: float) -> Lease:
        return await self.store.acquire(conversation_id, holder, ttl)

    async def renew(self, lease: Lease) -> None:
        await self.store.renew(lease)

    async def release(self, lease: Lease) -> None:
        self.releases += 1
        if self.failures:
            self.failures -= 1
            raise StateStoreUnavailableError("the store is down for this test")
        await self.store.release(lease)


async def test_a_lease_the_run_released_is_not_released_again_at_exit():
    lock = CountingLock()
    lease = await lock.acquire("conv_1", "run_1", 30)
    async with released_at_exit(lock, lease, 5) as release:
        await release.release()
        await release.release()
    assert lock.releases == 1
    assert await lock.acquire("conv_1", "run_2", 30)  # free


async def test_the_exit_releases_what_the_run_did_not():
    lock = CountingLock()
    lease = await lock.acquire("conv_1", "run_1", 30)
    async with released_at_exit(lock, lease, 5):
        pass
    assert lock.releases == 1
    assert await lock.acquire("conv_1", "run_2", 30)


async def test_a_release_that_failed_at_the_run_s_end_is_tried_again_at_exit():
    lock = CountingLock(failures=1)
    lease = await lock.acquire("conv_1", "run_1", 30)
    async with released_at_exit(lock, lease, 5) as release:
        with pytest.raises(StateStoreUnavailableError):
            await release.release()
        assert not release.released
    assert lock.releases == 2
    assert await lock.acquire("conv_1", "run_2", 30)
