"""Keep-alive HTTP connections over a real socket: reused, closed when idle too long or at shutdown.

The worker times idle connections with one timer each (``_IdleTimer``), in place
of Hypercorn's pair of tasks per request.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import anyio
import pytest

from assistant_service.entrypoints.http.app import create_app
from assistant_service.entrypoints.server import hypercorn_config, serve

pytestmark = pytest.mark.anyio

REQUEST = b"GET /healthz HTTP/1.1\r\nhost: test\r\n\r\n"


@contextlib.asynccontextmanager
async def running(
    settings, services, keep_alive: float
) -> AsyncIterator[tuple[int, asyncio.Event]]:
    config = hypercorn_config(settings, "127.0.0.1", 0)
    config.keep_alive_timeout = keep_alive
    sockets = config.create_sockets()
    port = sockets.insecure_sockets[0].getsockname()[1]
    stop, stopped = asyncio.Event(), anyio.Event()

    async def run() -> None:
        try:
            await serve(
                settings,
                config,
                sockets=sockets,
                shutdown_trigger=stop.wait,
                app=create_app(services),
            )
        finally:
            for sock in sockets.insecure_sockets:
                sock.close()
            stopped.set()

    async with anyio.create_task_group() as group:
        group.start_soon(run)
        yield port, stop
        stop.set()
        with anyio.fail_after(10):
            await stopped.wait()


async def connect(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    with anyio.fail_after(10):
        while True:
            try:
                return await asyncio.open_connection("127.0.0.1", port)
            except OSError:  # noqa: PERF203 -- not listening yet
                await anyio.sleep(0.02)


async def healthz(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bytes:
    writer.write(REQUEST)
    with anyio.fail_after(5):
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        await reader.readexactly(length)
    return head.split(b"\r\n", 1)[0]


async def closed_within(reader: asyncio.StreamReader, seconds: float) -> bool:
    with anyio.move_on_after(seconds):
        return await reader.read(1) == b""
    return False


async def test_a_connection_is_reused_while_busy_and_closed_once_idle_too_long(settings, services):
    async with running(settings, services, keep_alive=0.4) as (port, _):
        reader, writer = await connect(port)
        started = anyio.current_time()
        # Requests 0.2 s apart for over a second: each gap is shorter than the timeout.
        while anyio.current_time() - started < 1.2:
            assert await healthz(reader, writer) == b"HTTP/1.1 200 "
            answered = anyio.current_time()
            await anyio.sleep(0.2)
        assert await closed_within(reader, 3)
        assert 0.35 < anyio.current_time() - answered < 2
        writer.close()


async def test_shutdown_closes_idle_connections_at_once(settings, services):
    async with running(settings, services, keep_alive=60) as (port, stop):
        connections = [await connect(port) for _ in range(3)]
        for reader, writer in connections:
            assert await healthz(reader, writer) == b"HTTP/1.1 200 "
        stop.set()
        for reader, writer in connections:
            assert await closed_within(reader, 2)
            writer.close()
