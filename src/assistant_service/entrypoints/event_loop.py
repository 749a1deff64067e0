"""The server's event loop: the standard library's asyncio, or uvloop when asked or installed.

uvloop (the ``speed`` extra) runs the same asyncio code on libuv: the socket
and timer machinery under every request costs less, so one worker serves more.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from assistant_service.domain.errors import ConfigurationError
from assistant_service.entrypoints.settings import EventLoop

T = TypeVar("T")


def resolve_loop(choice: EventLoop) -> EventLoop:
    """The loop ``choice`` stands for here: ``auto`` becomes ``uvloop`` or ``asyncio``.

    Raises :class:`ConfigurationError` for ``uvloop`` when it is not installed.
    """
    if choice is EventLoop.ASYNCIO:
        return choice
    if _uvloop_runner() is not None:
        return EventLoop.UVLOOP
    if choice is EventLoop.UVLOOP:
        raise ConfigurationError(
            "the uvloop event loop is not installed: pip install 'assistant-service[speed]' "
            "(or choose --loop asyncio)"
        )
    return EventLoop.ASYNCIO


def run_loop(main: Coroutine[Any, Any, T], loop: EventLoop) -> T:
    """``asyncio.run(main)`` on ``loop`` (a resolved choice: see :func:`resolve_loop`)."""
    runner = _uvloop_runner() if loop is EventLoop.UVLOOP else None
    if runner is None:
        return asyncio.run(main)
    result: T = runner(main)
    return result


def _uvloop_runner() -> Callable[[Coroutine[Any, Any, Any]], Any] | None:
    try:
        import uvloop  # noqa: PLC0415 -- optional: the speed extra
    except ImportError:
        return None
    run: Callable[[Coroutine[Any, Any, Any]], Any] = uvloop.run
    return run
