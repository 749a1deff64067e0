"""Upstream calls, reported to the observers the composition root subscribed.

The language-model adapters make their calls deep below any run (opening a
conversation, reading history, each model step), so they report through this
one process-wide list rather than through every constructor; the list is empty
(and reporting costs a truth test) unless :func:`subscribe` was called.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator

from assistant_service.domain.errors import AssistantServiceError
from assistant_service.ports.observer import Observer, UpstreamCall

_subscribers: list[Observer] = []

ABANDONED = "abandoned"
OK = "ok"


def subscribe(observer: Observer) -> Callable[[], None]:
    """Report every upstream call to ``observer`` until the returned function is called."""
    _subscribers.append(observer)

    def unsubscribe() -> None:
        with contextlib.suppress(ValueError):
            _subscribers.remove(observer)

    return unsubscribe


def report(backend: str, operation: str, outcome: str, seconds: float) -> None:
    """Tell every subscriber of one upstream call that ended."""
    if not _subscribers:
        return
    call = UpstreamCall(backend, operation, outcome, seconds)
    for observer in tuple(_subscribers):
        observer.upstream_call(call)


@contextlib.contextmanager
def reported(backend: str, operation: str) -> Iterator[None]:
    """Time the block and report it: ``ok``, our error's code, or ``abandoned``.

    Put it outside the block that translates vendor errors, so it sees ours.
    """
    started = time.perf_counter()
    outcome = OK
    try:
        yield
    except AssistantServiceError as error:
        outcome = error.code
        raise
    except BaseException:
        outcome = ABANDONED  # cancelled, or the caller stopped reading the stream
        raise
    finally:
        report(backend, operation, outcome, time.perf_counter() - started)
