"""Request rate limits at the edge, counted with the ``limits`` library.

Each caller (an API key's id, or the client's address when keys are off) has a
moving window: at most N requests in any period (``60/minute``), from
``RATE_LIMIT`` or the key's own ``rate_limit``. A refused request adds nothing
to the count. The counters live in the ``limits`` storage the composition root
picks: this process's memory, or Redis (the state store's server), so that every
instance counts against one window. A moving window keeps one entry per request
it admitted in the last period, so what it holds is bounded by what it lets in.

A storage that cannot be reached lets requests through (``limits.unavailable``
in the log): the limits guard spending, and a run cannot start without the
state store anyway.
"""

from __future__ import annotations

import math
import time

import attrs
import structlog
from limits import RateLimitItem, parse_many
from limits.aio.storage import MemoryStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError

from assistant_service.entrypoints.http.refusals import Quota, RateLimitedError

log = structlog.get_logger(__name__)


def parse_rate_limit(text: str) -> RateLimitItem:
    """One limit in the ``limits`` notation: ``60/minute``, ``1000 per day``, ``10/5 seconds``.

    Raises ``ValueError`` saying what is wrong (several limits, a count of 0, bad text).
    """
    try:
        items = parse_many(text.strip())
    except ValueError:
        raise ValueError(
            f'not a rate limit: {text!r} (like "60/minute", "1000/day", "10/5 seconds")'
        ) from None
    if len(items) != 1:
        raise ValueError(f"give one rate limit, got {len(items)}: {text!r}")
    if items[0].amount < 1:
        raise ValueError(f"a rate limit allows 1 request or more: {text!r}")
    return items[0]


def seconds_until(moment: float, *, at_least: int = 0) -> int:
    """Whole seconds from now until ``moment`` (epoch seconds), rounded up."""
    return max(at_least, math.ceil(moment - time.time()))


@attrs.define
class RequestLimiter:
    """Counts each caller's requests against its limit; refuses past it.

    ``default`` is ``RATE_LIMIT`` (``None``: no limit unless the key has one);
    ``per_key`` maps API key ids to their own limits.
    """

    _limiter: MovingWindowRateLimiter = attrs.field(alias="limiter")
    default: RateLimitItem | None = None
    per_key: dict[str, RateLimitItem] = attrs.field(factory=dict)
    _failures: tuple[type[Exception], ...] = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self._failures = storage_failures(self._limiter.storage)

    @classmethod
    def on(
        cls,
        storage: Storage,
        default: RateLimitItem | None,
        per_key: dict[str, RateLimitItem] | None = None,
    ) -> RequestLimiter:
        return cls(limiter=MovingWindowRateLimiter(storage), default=default, per_key=per_key or {})

    def limit_for(self, key_id: str | None) -> RateLimitItem | None:
        """The limit of a key (its own, else the default), or of a keyless caller."""
        if key_id is not None and key_id in self.per_key:
            return self.per_key[key_id]
        return self.default

    async def admit(self, identity: str, item: RateLimitItem) -> Quota | None:
        """Count one request of ``identity``; its quota after it (``None``: storage down).

        Raises :class:`RateLimitedError` past the limit.
        """
        try:
            admitted = await self._limiter.hit(item, "requests", identity)
            stats = await self._limiter.get_window_stats(item, "requests", identity)
        except self._failures as error:
            log.warning("limits.unavailable", error=describe_failure(error))
            return None
        quota = Quota(item.amount, max(0, stats.remaining), seconds_until(stats.reset_time))
        if not admitted:
            retry_after = max(1, quota.reset)
            raise RateLimitedError(
                f"rate limit of {item.amount} per {_period(item)} reached;"
                f" retry in {retry_after} s",
                retry_after=retry_after,
                quota=quota,
            )
        return quota


def storage_failures(storage: Storage) -> tuple[type[Exception], ...]:
    """What ``storage`` raises when it cannot answer.

    ``limits`` wraps the errors of some of its storage calls in ``StorageError``
    but not those of the moving window: both are caught.
    """
    if isinstance(storage, MemoryStorage):
        return (StorageError,)  # memory answers; its ValueError would be a bug
    base = storage.base_exceptions
    return (StorageError, *(base if isinstance(base, tuple) else (base,)))


def describe_failure(error: Exception) -> str:
    """The storage's own words (a host and port at most: never the URL or password)."""
    cause = error.storage_error if isinstance(error, StorageError) else error
    return f"{type(cause).__name__}: {cause}"


def _period(item: RateLimitItem) -> str:
    granularity = item.GRANULARITY.name
    return granularity if item.multiples == 1 else f"{item.multiples} {granularity}s"
