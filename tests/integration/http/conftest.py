"""The Quart app in-process (``app.test_app()``) on a scripted model and real function tools."""

from __future__ import annotations

import io
import json
import logging
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import anyio
import attrs
import pytest
import structlog
from quart import Quart

from assistant_service.adapters.config.memory import InMemoryConfigRepository
from assistant_service.adapters.llm.offline import offline_reply
from assistant_service.adapters.llm.scripted import ScriptedModel
from assistant_service.adapters.secrets.memory import InMemorySecretRepository
from assistant_service.adapters.tools import FunctionToolRegistry
from assistant_service.application.service import AssistantService
from assistant_service.domain.models import AssistantProfile, RunLimits
from assistant_service.entrypoints.http.app import create_app
from assistant_service.entrypoints.http.services import Services
from assistant_service.entrypoints.logs import configure_logging
from assistant_service.entrypoints.settings import LLMBackend, LogFormat, Settings

tool_log = logging.getLogger("tests.tools")


@attrs.define
class ToolProbe:
    """What the test tools saw: started, cancelled, the thread they logged from."""

    started: anyio.Event | None = None
    # Set by a test to let a waiting tool finish early: runs stay active exactly as long
    # as a test needs, however slow the machine.
    release: anyio.Event = attrs.field(factory=anyio.Event)
    cancelled: bool = False
    finished: bool = False
    thread_names: list[str] = attrs.field(factory=list)


@pytest.fixture
def probe() -> ToolProbe:
    return ToolProbe(started=anyio.Event())


@pytest.fixture
def registry(probe: ToolProbe) -> FunctionToolRegistry:
    async def wait(seconds: float) -> str:
        """Wait until released or ``seconds`` pass, then answer (a slow tool)."""
        assert probe.started is not None
        probe.started.set()
        try:
            with anyio.move_on_after(seconds):
                await probe.release.wait()
        except anyio.get_cancelled_exc_class():
            probe.cancelled = True
            raise
        probe.finished = True
        return "waited"

    def note(text: str) -> str:
        """Log ``text`` from a worker thread."""
        probe.thread_names.append(threading.current_thread().name)
        tool_log.info("tool says %s", text)
        return text

    registry = FunctionToolRegistry()
    registry.register(wait, namespace="t")
    registry.register(note, namespace="t")
    return registry


@pytest.fixture
def settings() -> Settings:
    return Settings(
        llm_backend=LLMBackend.OFFLINE,
        max_body_bytes=4_096,
        max_message_length=1_000,
        max_ws_message_bytes=2_048,
        max_concurrent_runs=4,
        ws_idle_timeout=30.0,
    )


@pytest.fixture
def model() -> ScriptedModel:
    # Scripted steps first; with the script empty it answers like the offline model.
    return ScriptedModel(responder=offline_reply)


@pytest.fixture
def profile(registry: FunctionToolRegistry) -> AssistantProfile:
    return AssistantProfile(
        id="test",
        model="scripted",
        tools=tuple(registry.names()),
        limits=RunLimits(tool_timeout=5.0, max_message_length=500, max_tool_rounds=2),
    )


@pytest.fixture
def services(
    settings: Settings,
    model: ScriptedModel,
    registry: FunctionToolRegistry,
    profile: AssistantProfile,
) -> Services:
    configs = InMemoryConfigRepository.of(profile)
    assistant = AssistantService(
        model=model,
        state=model.store,
        configs=configs,
        tools=registry,
        default_assistant_id=profile.id,
    )
    return Services(
        assistant=assistant,
        configs=configs,
        secrets=InMemorySecretRepository(values={}),
        settings=settings,
    )


@pytest.fixture
async def app(services: Services) -> AsyncIterator[Quart]:
    app = create_app(services)
    async with app.test_app():
        yield app


@pytest.fixture
def client(app: Quart) -> Any:
    return app.test_client()


@pytest.fixture
def read_logs(settings: Settings) -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """Configure the real JSON logging into a buffer; the callable parses what was written."""
    buffer = io.StringIO()
    configure_logging(attrs.evolve(settings, log_format=LogFormat.JSON), stream=buffer)

    def read() -> list[dict[str, Any]]:
        return [json.loads(line) for line in buffer.getvalue().splitlines() if line]

    yield read
    root = logging.getLogger()
    for handler in [h for h in root.handlers if h.get_name() == "assistant_service"]:
        root.removeHandler(handler)
    root.setLevel(logging.WARNING)
    structlog.reset_defaults()
