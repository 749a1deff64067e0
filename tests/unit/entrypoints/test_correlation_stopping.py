"""The correlation middleware ends the requests still open when the server stops, as disconnects."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from assistant_service.entrypoints.http.correlation import CorrelationMiddleware

pytestmark = pytest.mark.anyio


class WaitingApp:
    """An ASGI app that answers once its client disconnects (as Quart ends a request)."""

    def __init__(self, expected: int = 1) -> None:
        self.expected = expected
        self.started = 0
        self.all_started = anyio.Event()
        self.disconnected = 0

    async def __call__(self, _scope: Any, receive: Any, _send: Any) -> None:
        self.started += 1
        if self.started >= self.expected:
            self.all_started.set()
        message = await receive()  # nothing comes until the disconnect
        assert message["type"] == "http.disconnect"
        self.disconnected += 1


async def never() -> dict[str, Any]:
    await anyio.sleep_forever()
    raise AssertionError  # pragma: no cover


async def nothing(_message: Any) -> None:
    return None


def scope() -> dict[str, Any]:
    return {"type": "http", "method": "GET", "path": "/wait", "headers": []}


async def test_open_requests_and_later_ones_end_as_disconnects_when_stopping():
    app = WaitingApp(expected=3)
    stopping = anyio.Event()
    middleware = CorrelationMiddleware(app, stopping=stopping)
    with anyio.fail_after(5):
        async with anyio.create_task_group() as group:
            for _ in range(3):
                group.start_soon(middleware, scope(), never, nothing)
            await app.all_started.wait()
            stopping.set()
        # Each returned normally: the middleware's own cancellation does not escape.
        assert app.disconnected == 3
        await middleware(scope(), never, nothing)  # after stopping: ended at once
    assert app.disconnected == 4
    assert not middleware._open
    assert not middleware._ended


async def test_a_cancellation_that_is_not_the_servers_stop_goes_on():
    middleware = CorrelationMiddleware(WaitingApp(), stopping=anyio.Event())
    with anyio.move_on_after(0.1) as scope_:
        await middleware(scope(), never, nothing)
    assert scope_.cancelled_caught
    assert not middleware._open
