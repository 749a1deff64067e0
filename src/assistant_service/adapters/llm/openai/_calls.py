"""Calls from the Chat Completions and Assistants adapters to the SDK: logged, translated, bounded."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any, TypeVar

import attrs

from assistant_service.adapters._logs import get_logger
from assistant_service.adapters.llm.openai._client import (
    log_upstream_call,
    translate_openai_errors,
)
from assistant_service.adapters.observability import upstream
from assistant_service.domain.errors import AssistantServiceError, UpstreamError

log = get_logger("assistant_service.llm")

T = TypeVar("T")


@contextlib.contextmanager
def upstream_call(
    backend: str, operation: str, *, not_found: tuple[str, str] | None = None, **fields: Any
) -> Iterator[None]:
    """Log and report one upstream call with the correlation id, and translate its errors.

    Inside, vendor exceptions become ``UpstreamError``/``UpstreamUnavailableError``
    (a 404 becomes ``NotFoundError(*not_found)`` when given); one log line says
    how long the call took and how it ended, never what was sent.
    """
    started = time.perf_counter()
    outcome = "ok"
    try:
        with translate_openai_errors(not_found):
            yield
    except AssistantServiceError as error:
        outcome = error.code
        raise
    except BaseException:
        outcome = "abandoned"  # cancelled, or the caller stopped reading the stream
        raise
    finally:
        seconds = time.perf_counter() - started
        upstream.report(backend, operation, outcome, seconds)
        duration_ms = round(seconds * 1000, 1)
        log_upstream_call(
            operation, backend=backend, outcome=outcome, duration_ms=duration_ms, **fields
        )


class MalformedEventError(UpstreamError):
    """An upstream reply, event, chunk or item this adapter cannot read: the call fails cleanly.

    A fault of the upstream's (a server that answers what it cannot mean is failing).
    """

    fault = True


def malformed(backend: str, what: str, detail: str) -> MalformedEventError:
    """Log a malformed upstream event and return the error that ends the step."""
    log.error("llm.malformed_event", backend=backend, kind=what, detail=detail[:500])
    return MalformedEventError(f"the model server sent a malformed {what}: the step was abandoned")


@attrs.define
class StepGuard:
    """Bounds one streamed step: a deadline over the whole stream and a number of events.

    The SDK's read timeout catches a server that goes silent; this catches one
    that keeps talking without ever finishing.
    """

    backend: str
    timeout: float
    max_events: int
    _deadline: float = attrs.field(init=False)
    _events: int = attrs.field(default=0, init=False)

    def __attrs_post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout

    async def next(self, events: AsyncIterator[T], what: str) -> T | None:
        """The stream's next event, or ``None`` at its end.

        Raises ``UpstreamError`` for an event that is not JSON or does not
        parse, and when the step runs past its deadline or event budget.
        """
        try:
            event = await events.__anext__()
        except StopAsyncIteration:
            return None
        except ValueError as error:  # JSONDecodeError and pydantic's ValidationError
            raise malformed(self.backend, what, str(error)) from None
        self._events += 1
        if self._events > self.max_events:
            raise UpstreamError(
                f"the model streamed more than {self.max_events} events in one step"
            )
        if time.monotonic() > self._deadline:
            raise UpstreamError(f"the model step took longer than {self.timeout:g} s", fault=True)
        return event
