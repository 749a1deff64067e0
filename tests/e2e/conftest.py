"""The real server: Hypercorn on 127.0.0.1 (a free port), in this process, with a stop trigger."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import anyio
import attrs
import httpx2
import pytest
from quart import Quart

from assistant_service.adapters.config.memory import InMemoryConfigRepository
from assistant_service.adapters.llm.offline import offline_reply
from assistant_service.adapters.llm.scripted import ScriptedModel
from assistant_service.adapters.secrets.memory import InMemorySecretRepository
from assistant_service.adapters.tools import FunctionToolRegistry
from assistant_service.application.service import AssistantService
from assistant_service.domain.models import AssistantProfile, RunLimits
from assistant_service.entrypoints.http.app import create_app, edge_state
from assistant_service.entrypoints.http.services import Services
from assistant_service.entrypoints.server import hypercorn_config, serve
from assistant_service.entrypoints.settings import LLMBackend, Settings
from support.servers import firestore_emulator, redis_server  # noqa: F401 -- fixtures for e2e


@attrs.define
class SlowTool:
    """An async tool that waits; records whether it was cancelled."""

    started: anyio.Event = attrs.field(factory=anyio.Event)
    # A test sets it to let the tool finish: runs last as long as the test needs.
    release: anyio.Event = attrs.field(factory=anyio.Event)
    cancelled: anyio.Event = attrs.field(factory=anyio.Event)
    finished: bool = False

    async def wait(self, seconds: float) -> str:
        """Wait until released or ``seconds`` pass, then answer."""
        self.started.set()
        try:
            with anyio.move_on_after(seconds):
                await self.release.wait()
        except anyio.get_cancelled_exc_class():
            self.cancelled.set()
            raise
        self.finished = True
        return "waited"


@attrs.define
class RunningServer:
    url: str
    ws_url: str
    app: Quart
    stop: asyncio.Event
    stopped: anyio.Event

    async def shutdown(self) -> None:
        self.stop.set()
        with anyio.fail_after(10):
            await self.stopped.wait()


@pytest.fixture
def slow_tool() -> SlowTool:
    return SlowTool()


@pytest.fixture
def model() -> ScriptedModel:
    return ScriptedModel(responder=offline_reply)


@pytest.fixture
def settings() -> Settings:
    return Settings(
        llm_backend=LLMBackend.OFFLINE,
        max_ws_message_bytes=4_096,
        max_body_bytes=16_384,
        graceful_timeout=5.0,
        ws_ping_interval=0.1,
    )


@pytest.fixture
def services(settings: Settings, model: ScriptedModel, slow_tool: SlowTool) -> Services:
    registry = FunctionToolRegistry()
    registry.register(slow_tool.wait, namespace="t", name="wait")
    profile = AssistantProfile(
        id="e2e", model="scripted", tools=("t.wait",), limits=RunLimits(tool_timeout=60.0)
    )
    configs = InMemoryConfigRepository.of(profile)
    assistant = AssistantService(
        model=model,
        state=model.store,
        configs=configs,
        tools=registry,
        default_assistant_id="e2e",
    )
    return Services(assistant, configs, InMemorySecretRepository(values={}), settings)


@contextlib.asynccontextmanager
async def _running(
    settings: Settings, services: Services, *, signals: bool
) -> AsyncIterator[RunningServer]:
    """Hypercorn on a free port of 127.0.0.1; ``signals``: SIGTERM/SIGINT stop it, not ``stop``."""
    config = hypercorn_config(settings, "127.0.0.1", 0)
    sockets = config.create_sockets()
    port = sockets.insecure_sockets[0].getsockname()[1]
    app = create_app(services)
    running = RunningServer(
        url=f"http://127.0.0.1:{port}",
        ws_url=f"ws://127.0.0.1:{port}/stream",
        app=app,
        stop=asyncio.Event(),
        stopped=anyio.Event(),
    )
    trigger = None if signals else running.stop.wait

    async def run() -> None:
        try:
            await serve(settings, config, sockets=sockets, shutdown_trigger=trigger, app=app)
        finally:
            for sock in sockets.insecure_sockets:
                sock.close()
            running.stopped.set()

    async with anyio.create_task_group() as group:
        group.start_soon(run)
        await _wait_healthy(running.url)
        yield running


@pytest.fixture
async def server(settings: Settings, services: Services) -> AsyncIterator[RunningServer]:
    async with _running(settings, services, signals=False) as running:
        yield running
        await running.shutdown()
    assert edge_state(running.app).slots.active == 0


@pytest.fixture
async def http(server: RunningServer) -> AsyncIterator[httpx2.AsyncClient]:
    async with httpx2.AsyncClient(base_url=server.url, timeout=10) as client:
        yield client


@pytest.fixture
async def signalled_server(settings: Settings, services: Services) -> AsyncIterator[RunningServer]:
    """The server with no stop trigger: SIGTERM and SIGINT stop it, as in production."""
    async with _running(settings, services, signals=True) as running:
        yield running
        with anyio.fail_after(10):
            await running.stopped.wait()


async def _wait_healthy(url: str) -> None:
    async with httpx2.AsyncClient(base_url=url) as client:
        with anyio.fail_after(10):
            while True:
                try:
                    if (await client.get("/healthz")).status_code == 200:
                        return
                except httpx2.TransportError:  # noqa: PERF203 -- not up yet
                    await anyio.sleep(0.02)
