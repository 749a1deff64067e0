"""Daily token budgets per API key (``daily_tokens``), counted from runs' usage.

A key's tokens (input and output) are added up in a fixed window of one day,
in the same ``limits`` storage as the request limits (so every instance on
Redis adds to one total); the window opens with the first tokens counted and
closes 24 hours later. A run is refused (``429 budget_exhausted``) while the
window's total has reached the budget: the run that crosses it finishes, so a
key can go over by at most what its runs in flight use.

Usage is reported by the application through the observer port, one model step
at a time (a run its client abandoned still pays for the steps it made). The
application knows nothing of keys: the edge says whose runs these are with
:func:`charge_runs_to` in the request's context, which every run started from
it (background runs included) inherits.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections import Counter
from contextlib import AbstractContextManager, nullcontext

import anyio
import attrs
import structlog
from limits import RateLimitItem, RateLimitItemPerDay
from limits.aio.storage import Storage
from limits.aio.strategies import FixedWindowRateLimiter

from assistant_service.application.observing import NO_RUN_OBSERVATION
from assistant_service.domain.errors import AssistantServiceError
from assistant_service.domain.models import Usage
from assistant_service.domain.tools import ToolCall
from assistant_service.entrypoints.http.limiting import (
    describe_failure,
    seconds_until,
    storage_failures,
)
from assistant_service.entrypoints.http.refusals import BudgetExhaustedError
from assistant_service.ports.observer import (
    HttpRequest,
    RunInfo,
    RunObservation,
    StepObservation,
    ToolObservation,
    UpstreamCall,
)

log = structlog.get_logger(__name__)

DAY = 24 * 3600
# How long shutdown waits for the last usage to be written: a healthy store takes
# milliseconds, and Cloud Run kills the process 10 s after SIGTERM.
FLUSH_TIMEOUT = 2.0

# The API key whose budget pays for runs started in this context (a request, a
# socket, and the tasks they start).
_payer: contextvars.ContextVar[str | None] = contextvars.ContextVar("budget_payer", default=None)


def charge_runs_to(key_id: str) -> None:
    """Runs started from the current context (and tasks it starts) count against ``key_id``."""
    _payer.set(key_id)


@attrs.define
class TokenBudgets:
    """Each key's tokens of the day, against its ``daily_tokens``.

    Usage is written in the background (the observer's hooks may not wait); what
    is not written yet counts already, so a refusal right after a run is certain.
    """

    _limiter: FixedWindowRateLimiter = attrs.field(alias="limiter")
    _daily: dict[str, RateLimitItem] = attrs.field(alias="daily")
    _failures: tuple[type[Exception], ...] = attrs.field(init=False)
    _unwritten: Counter[str] = attrs.field(factory=Counter, init=False)
    _writes: set[asyncio.Task[None]] = attrs.field(factory=set, init=False)

    def __attrs_post_init__(self) -> None:
        self._failures = storage_failures(self._limiter.storage)

    @classmethod
    def on(cls, storage: Storage, daily_tokens: dict[str, int]) -> TokenBudgets:
        """Budgets of ``daily_tokens`` (key id -> tokens a day) counted in ``storage``."""
        daily: dict[str, RateLimitItem] = {
            key: RateLimitItemPerDay(tokens) for key, tokens in daily_tokens.items()
        }
        return cls(limiter=FixedWindowRateLimiter(storage), daily=daily)

    def applies_to(self, key_id: str | None) -> bool:
        return key_id is not None and key_id in self._daily

    async def check(self, key_id: str | None) -> None:
        """Raise :class:`BudgetExhaustedError` when ``key_id`` has used its tokens of the day.

        A storage that cannot answer lets the run start (``limits.unavailable``).
        """
        if key_id is None or key_id not in self._daily:
            return
        item = self._daily[key_id]
        try:
            stats = await self._limiter.get_window_stats(item, "tokens", key_id)
        except self._failures as error:
            log.warning("limits.unavailable", error=describe_failure(error))
            return
        unwritten = self._unwritten[key_id]
        if stats.remaining - unwritten > 0:
            return
        # With nothing written yet, the tokens in flight open the window when they are.
        opened = stats.remaining < item.amount
        retry_after = seconds_until(stats.reset_time, at_least=1) if opened else DAY
        log.info("budget.exhausted", daily_tokens=item.amount)
        raise BudgetExhaustedError(
            f"this API key has used its {item.amount} tokens of the day; retry in {retry_after} s",
            retry_after=retry_after,
        )

    def spend(self, key_id: str, tokens: int) -> None:
        """Add ``tokens`` to ``key_id``'s day; written in the background, counted at once."""
        if tokens <= 0 or key_id not in self._daily:
            return
        self._unwritten[key_id] += tokens
        task = asyncio.get_running_loop().create_task(self._write(key_id, tokens))
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    async def _write(self, key_id: str, tokens: int) -> None:
        try:
            await self._limiter.hit(self._daily[key_id], "tokens", key_id, cost=tokens)
        except self._failures as error:
            log.warning("budget.not_recorded", tokens=tokens, error=describe_failure(error))
        finally:
            self._unwritten[key_id] -= tokens
            if self._unwritten[key_id] <= 0:
                del self._unwritten[key_id]

    async def flush(self) -> None:
        """Wait (up to ``FLUSH_TIMEOUT`` seconds) for the usage not written yet."""
        with anyio.move_on_after(FLUSH_TIMEOUT):
            while self._writes:
                await asyncio.wait(set(self._writes))

    def observer(self) -> BudgetObserver:
        """The observer that counts runs' usage against their payer's budget."""
        return BudgetObserver(self)


@attrs.frozen
class BudgetObserver:
    """Counts each model step's tokens against the budget of the key that started the run."""

    # The hooks' arguments are the port's; budgets need only the run's payer.
    # ruff: noqa: ARG002

    _budgets: TokenBudgets

    def run_started(self, run: RunInfo) -> RunObservation:
        payer = _payer.get()
        if not self._budgets.applies_to(payer):
            return NO_RUN_OBSERVATION
        assert payer is not None  # noqa: S101 -- applies_to says so
        return _PaidRun(self._budgets, payer)

    def upstream_call(self, call: UpstreamCall) -> None:
        pass

    def http_request(self, request: HttpRequest) -> None:
        pass

    def websocket_opened(self) -> None:
        pass

    def websocket_closed(self) -> None:
        pass

    def run_slots(self, in_use: int, limit: int) -> None:
        pass

    def refused(self, code: str) -> None:
        pass

    def breaker_changed(self, upstream: str, state: str) -> None:
        pass


@attrs.frozen
class _PaidRun:
    budgets: TokenBudgets
    payer: str

    def first_text(self, seconds: float) -> None:
        pass

    def step_started(self, index: int) -> StepObservation:
        return _PaidStep(self.budgets, self.payer)

    def tool_call_started(self, call: ToolCall) -> ToolObservation:
        return _NO_TOOL

    def ended(
        self, status: str, usage: Usage, seconds: float, error: AssistantServiceError | None
    ) -> None:
        pass  # each step paid for itself


@attrs.frozen
class _PaidStep:
    budgets: TokenBudgets
    payer: str

    def active(self) -> AbstractContextManager[object]:
        return _NOTHING

    def ended(self, usage: Usage, error: AssistantServiceError | None) -> None:
        self.budgets.spend(self.payer, usage.total_tokens)


class _NoTool:
    __slots__ = ()

    def active(self) -> AbstractContextManager[object]:
        return _NOTHING

    def ended(self, outcome: object) -> None:
        pass


_NO_TOOL = _NoTool()
_NOTHING: AbstractContextManager[object] = nullcontext()
