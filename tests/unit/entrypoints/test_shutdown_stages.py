"""The edge's shutdown stages and connection registry, on their own (no server)."""

from __future__ import annotations

import asyncio
from typing import Any

import anyio
import pytest

from assistant_service.domain.errors import NotFoundError
from assistant_service.entrypoints.http.connections import (
    ClientNotReadingError,
    ConnectionGuard,
    Connections,
    connection_key,
    ping_sleep,
)
from assistant_service.entrypoints.http.errors import ShuttingDownError
from assistant_service.entrypoints.http.state import EdgeState, RunSlots

pytestmark = pytest.mark.anyio


def _state() -> EdgeState:
    return EdgeState(slots=RunSlots(4))


async def test_a_run_that_ends_first_gives_its_result_and_its_own_errors():
    state = _state()

    async def answer() -> str:
        return "done"

    async def fails() -> str:
        raise NotFoundError("thread", "conv_x")

    assert await state.until_runs_end(answer) == "done"
    with pytest.raises(NotFoundError):  # as it is, not in an exception group
        await state.until_runs_end(fails)


async def test_a_run_still_going_when_runs_end_is_cancelled_and_shutting_down_raised():
    state = _state()
    cancelled = anyio.Event()

    async def forever() -> str:
        try:
            await anyio.sleep_forever()
        finally:
            cancelled.set()
        return "never"

    async with anyio.create_task_group() as group:
        group.start_soon(_end_runs_soon, state)
        with anyio.fail_after(5), pytest.raises(ShuttingDownError) as raised:
            await state.until_runs_end(forever)
    assert cancelled.is_set()
    assert raised.value.code == "shutting_down"
    with pytest.raises(ShuttingDownError):  # and any run that starts after
        await state.until_runs_end(forever)


async def _end_runs_soon(state: EdgeState) -> None:
    await anyio.sleep(0.01)
    state.end_runs()


class _Transport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.aborted = False

    def abort(self) -> None:
        self.aborted = True


def _scope(client_port: int, http_version: str = "1.1") -> dict[str, object]:
    return {
        "type": "http",
        "http_version": http_version,
        "client": ("127.0.0.1", client_port),
        "server": ("127.0.0.1", 8000),
    }


def test_a_connection_is_aborted_by_its_scope_once_and_never_over_http2():
    connections = Connections()
    first, second = _Transport(), _Transport()
    connections.add(connection_key(("127.0.0.1", 1), ("127.0.0.1", 8000)), first)
    connections.add(connection_key(("127.0.0.1", 2), ("127.0.0.1", 8000)), second)
    assert not connections.abort(_scope(2, http_version="2"))  # other streams share it
    assert connections.abort(_scope(1))
    assert first.aborted
    assert not connections.abort(_scope(1))  # gone from the registry
    assert not connections.abort(_scope(3))
    assert connections.abort_all() == 1
    assert second.aborted
    assert len(connections) == 0


def test_a_connection_forgets_only_its_own_transport():
    connections = Connections()
    key = connection_key(("::1", 5, 0, 0), ("::1", 8000, 0, 0))
    assert key == (("::1", 5), ("::1", 8000))
    old, new = _Transport(), _Transport()
    connections.add(key, new)
    connections.discard(key, old)
    assert len(connections) == 1
    assert connection_key("/tmp/socket", "/tmp/socket") is None


async def test_pings_sleep_on_outside_a_socket_and_stop_when_its_app_ends():
    await ping_sleep(0)  # no socket: a plain sleep
    seen: list[BaseException] = []

    async def app(scope: object, receive: object, send: object) -> None:
        pinger = asyncio.ensure_future(ping_sleep(60))  # inherits the socket's context
        seen.append(pinger)  # type: ignore[arg-type]

    guard = ConnectionGuard(app, Connections(), send_timeout=1)
    await guard({"type": "websocket"}, _never, _never)
    [pinger] = seen
    with anyio.fail_after(5):
        await asyncio.wait({pinger})  # type: ignore[arg-type]
    assert pinger.cancelled()  # type: ignore[attr-defined]


async def _never(*_: object) -> None:
    raise AssertionError("not called")


async def test_a_send_the_client_never_takes_ends_as_a_drop_where_it_cannot_be_aborted():
    # No registered connection (another server, or HTTP/2): the send itself is ended.
    outcome: list[BaseException] = []

    async def blocked(message: object) -> None:
        await anyio.sleep_forever()

    async def app(scope: object, receive: object, send: Any) -> None:
        try:
            await send({"type": "http.response.start", "status": 200, "headers": []})
        except ClientNotReadingError as error:
            outcome.append(error)
            await send({"type": "http.response.body", "body": b""})  # refused at once too

    guard = ConnectionGuard(app, Connections(), send_timeout=0.05)
    with anyio.fail_after(5):
        await guard(_scope(1), _never, blocked)  # the app's unhandled second error is taken
    assert len(outcome) == 1
