"""A circuit breaker: after enough upstream faults in a row, fail fast for a while.

::

    closed --(``failures`` faults in a row)--> open --(``cooldown`` s)--> half_open
    half_open --(the one probe call succeeds)--> closed
    half_open --(the probe fails)--> open, for another cooldown

Closed, every call goes through; a fault adds one to the count, an answer (a
success, or an upstream error that is no fault, such as a 4xx) resets it,
unless its caller says answers of that call prove nothing. Open,
every call fails at once with :class:`UpstreamCircuitOpenError` and how long is
left, without reaching the upstream. Half-open, one call (the probe) goes
through while the others keep failing fast. A call that ends without a verdict
(cancelled, abandoned, an error of our own) changes nothing; a probe's just
lets the next call probe instead. A verdict counts only in the state its call
was let through in: calls still in flight when the breaker opened cannot close it.

The breaker is process-local state for one event loop (no lock: nothing in it
awaits). The clock is injectable so tests need no sleeping.
"""

from __future__ import annotations

import enum
import logging
import math
import time
from collections.abc import Callable

import attrs

from assistant_service.domain.errors import UpstreamCircuitOpenError, UpstreamError

log = logging.getLogger(__name__)

# A probe is in flight: there is no telling when it ends, so callers come back soon.
PROBE_RETRY_AFTER = 1.0


class BreakerState(str, enum.Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@attrs.frozen
class BreakerStatus:
    """What readiness shows: the state, the faults in a row, seconds until a probe may go."""

    state: BreakerState
    consecutive_failures: int
    retry_after: float

    def as_dict(self) -> dict[str, object]:
        return {
            "state": self.state.value,
            "consecutive_failures": self.consecutive_failures,
            "retry_after": self.retry_after,
        }


@attrs.frozen
class Permit:
    """A call let through: hand it back to :meth:`CircuitBreaker.record` with how it ended."""

    generation: int
    probe: bool


def is_fault(error: BaseException) -> bool:
    """Whether ``error`` says the upstream itself failed (see ``UpstreamError.fault``)."""
    return isinstance(error, UpstreamError) and error.fault


def is_answer(error: BaseException) -> bool:
    """Whether ``error`` is the upstream's deliberate answer (a 4xx, a refusal): it is up."""
    return (
        isinstance(error, UpstreamError)
        and not error.fault
        and not isinstance(error, UpstreamCircuitOpenError)
    )


@attrs.define
class CircuitBreaker:
    """One upstream's breaker; see the module docstring for its states.

    ``name`` labels its log events and metrics (``llm``). ``on_change`` is told
    ``(name, state)`` at every change of state (the metrics' gauge); it must not raise.
    """

    name: str = "llm"
    failures: int = attrs.field(default=5, validator=attrs.validators.ge(1))
    cooldown: float = attrs.field(default=30.0, validator=attrs.validators.gt(0))
    clock: Callable[[], float] = time.monotonic
    on_change: Callable[[str, str], None] | None = None
    _state: BreakerState = attrs.field(default=BreakerState.CLOSED, init=False)
    _in_a_row: int = attrs.field(default=0, init=False)
    _opened_at: float = attrs.field(default=0.0, init=False)
    _probing: bool = attrs.field(default=False, init=False)
    # Bumped at every change of state: a verdict from an older state is ignored.
    _generation: int = attrs.field(default=0, init=False)

    def __attrs_post_init__(self) -> None:
        if self.on_change is not None:
            self.on_change(self.name, self._state.value)

    def admit(self) -> Permit:
        """Let one call through, or raise ``UpstreamCircuitOpenError`` (with ``retry_after``)."""
        if self._state is BreakerState.OPEN:
            left = self._opened_at + self.cooldown - self.clock()
            if left > 0:
                raise self._open_error(left)
            self._change(BreakerState.HALF_OPEN)
        if self._state is BreakerState.HALF_OPEN:
            if self._probing:
                raise self._open_error(PROBE_RETRY_AFTER)
            self._probing = True
            log.info("breaker.probing", extra={"upstream": self.name})
            return Permit(self._generation, probe=True)
        return Permit(self._generation, probe=False)

    def record(
        self, permit: Permit, error: BaseException | None, *, answer_counts: bool = True
    ) -> None:
        """How the call of ``permit`` ended: ``None`` for success, else what it raised.

        ``answer_counts=False`` for a call whose success proves nothing (it may
        not have reached the upstream, or reached a part of it that is not the
        one failing): its faults count, its answers give no verdict.
        """
        if permit.generation != self._generation:
            return
        if error is not None and is_fault(error):
            self._fault(permit)
        elif answer_counts and (error is None or is_answer(error)):
            self._answered(permit)
        elif permit.probe:
            self._probing = False  # no verdict: the next call probes instead

    def status(self) -> BreakerStatus:
        """The state as of now (an open breaker whose cooldown is over reads ``half_open``)."""
        state, retry_after = self._state, 0.0
        if state is BreakerState.OPEN:
            left = self._opened_at + self.cooldown - self.clock()
            if left > 0:
                retry_after = _whole_seconds(left)
            else:
                state = BreakerState.HALF_OPEN
        return BreakerStatus(state, self._in_a_row, retry_after)

    def _fault(self, permit: Permit) -> None:
        self._in_a_row += 1
        if permit.probe:
            self._open(probe_failed=True)
        elif self._in_a_row >= self.failures:
            self._open(probe_failed=False)

    def _answered(self, permit: Permit) -> None:
        self._in_a_row = 0
        if permit.probe:
            self._change(BreakerState.CLOSED)
            log.info("breaker.closed", extra={"upstream": self.name})

    def _open(self, *, probe_failed: bool) -> None:
        self._opened_at = self.clock()
        self._change(BreakerState.OPEN)
        log.warning(
            "breaker.opened",
            extra={
                "upstream": self.name,
                "consecutive_failures": self._in_a_row,
                "cooldown": self.cooldown,
                "probe_failed": probe_failed,
            },
        )

    def _change(self, state: BreakerState) -> None:
        self._state = state
        self._probing = False
        self._generation += 1
        if self.on_change is not None:
            self.on_change(self.name, state.value)

    def _open_error(self, left: float) -> UpstreamCircuitOpenError:
        seconds = _whole_seconds(left)
        return UpstreamCircuitOpenError(
            f"the language model failed {self._in_a_row} times in a row: calls are "
            f"refused for now; retry in {seconds:g} s",
            retry_after=seconds,
        )


def _whole_seconds(seconds: float) -> float:
    # Retry-After takes whole seconds: the body says the same, rounded up so nobody comes early.
    return float(max(1, math.ceil(seconds)))
