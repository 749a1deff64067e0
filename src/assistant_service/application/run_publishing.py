"""Writing a run's events to the shared log, in few round trips."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import attrs

from assistant_service.application.event_codec import encode_event
from assistant_service.domain.events import RunEvent, TextDelta

if TYPE_CHECKING:
    from assistant_service.ports.run_state import RunEventLog

# Text deltas go out in batches: a shared log costs a round trip per append.
MAX_BATCH = 32
MAX_BATCH_AGE = 0.05


@attrs.define
class EventPublisher:
    """Appends a run's events to ``log``: deltas in small batches, every other event at once.

    A reader that resumes the run is at most one batch (32 deltas, 50 ms)
    behind the run's own stream; :meth:`flush` before the run's end.
    """

    _log: RunEventLog = attrs.field(alias="log")
    run_id: str
    _clock: Callable[[], float] = attrs.field(alias="clock", default=time.monotonic)
    _batch: list[dict[str, Any]] = attrs.field(factory=list, init=False)
    _started_at: float = attrs.field(default=0.0, init=False)

    async def add(self, event: RunEvent) -> None:
        if not self._batch:
            self._started_at = self._clock()
        self._batch.append(encode_event(event))
        if (
            not isinstance(event, TextDelta)
            or len(self._batch) >= MAX_BATCH
            or self._clock() - self._started_at >= MAX_BATCH_AGE
        ):
            await self.flush()

    async def flush(self) -> None:
        if self._batch:
            batch, self._batch = self._batch, []
            await self._log.append_events(self.run_id, batch)
