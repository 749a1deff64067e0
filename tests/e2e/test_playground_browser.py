"""The playground in a real browser (Debian's Chromium, driven by Playwright) against Hypercorn.

The server runs in a thread of this process on the offline model, with the demo
tools, a slow tool (to cancel and to resume) and one that needs approval. Every
test checks that the page asked nothing of any other origin. A failing test
leaves a screenshot in tests/artifacts/.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import attrs
import pytest

from assistant_service.adapters.config.memory import InMemoryConfigRepository
from assistant_service.adapters.llm.offline import offline_model
from assistant_service.adapters.secrets.memory import InMemorySecretRepository
from assistant_service.application.service import AssistantService
from assistant_service.domain.models import AssistantProfile, RunLimits
from assistant_service.entrypoints.bootstrap import demo_tools
from assistant_service.entrypoints.http.app import create_app
from assistant_service.entrypoints.http.auth import ApiKeys
from assistant_service.entrypoints.http.services import Services
from assistant_service.entrypoints.server import hypercorn_config, serve
from assistant_service.entrypoints.settings import LLMBackend, Settings

sync_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).parent.parent / "artifacts"
MAX_MESSAGE = 200


@attrs.frozen
class LiveServer:
    url: str
    ws_url: str


async def wait(seconds: float) -> str:
    """Wait ``seconds``, then answer (a slow tool)."""
    await anyio.sleep(seconds)
    return f"waited {seconds} s"


def delete(name: str) -> str:
    """Delete ``name`` (it needs a person's approval)."""
    return f"deleted {name}"


def services() -> Services:
    registry = demo_tools()
    registry.register(wait, namespace="t")
    registry.register(delete, namespace="t")
    profiles = [
        AssistantProfile(
            id="demo",
            model="offline",
            tools=("demo.add", "demo.get_forecast", "t.wait", "t.delete"),
            approval_required=("t.delete",),
            limits=RunLimits(tool_timeout=60.0, max_message_length=MAX_MESSAGE),
        ),
        AssistantProfile(id="plain", model="offline"),
    ]
    configs = InMemoryConfigRepository.of(*profiles)
    model = offline_model()
    assistant = AssistantService(
        model=model, state=model.store, configs=configs, tools=registry, default_assistant_id="demo"
    )
    settings = Settings(llm_backend=LLMBackend.OFFLINE, graceful_timeout=1.0)
    return Services(assistant, configs, InMemorySecretRepository(values={}), settings)


@contextlib.contextmanager
def live_server(built: Services) -> Iterator[LiveServer]:
    """Hypercorn in a thread, on its own event loop, until the block ends."""
    config = hypercorn_config(built.settings, "127.0.0.1", 0)
    sockets = config.create_sockets()
    port = sockets.insecure_sockets[0].getsockname()[1]
    ready = threading.Event()
    control: dict[str, object] = {}

    async def main() -> None:
        stop = asyncio.Event()
        control.update(loop=asyncio.get_running_loop(), stop=stop)
        ready.set()
        app = create_app(built)
        await serve(built.settings, config, sockets=sockets, shutdown_trigger=stop.wait, app=app)

    thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    thread.start()
    ready.wait(10)
    _wait_until_listening(port)
    try:
        yield LiveServer(f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}")
    finally:
        loop, stop = control["loop"], control["stop"]
        loop.call_soon_threadsafe(stop.set)  # type: ignore[attr-defined]
        thread.join(10)
        for sock in sockets.insecure_sockets:
            sock.close()


def _wait_until_listening(port: int, timeout: float = 10.0) -> None:
    """Return once the server accepts connections: its sockets listen only once it serves."""
    deadline = time.monotonic() + timeout
    while not _accepts(port):
        if time.monotonic() > deadline:
            raise TimeoutError(f"the live server on port {port} did not listen in {timeout} s")
        time.sleep(0.02)


def _accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1.0).close()
    except OSError:
        return False
    return True


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    with live_server(services()) as live:
        yield live


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        pytest.skip("Debian's chromium is not installed (.ci/run installs it)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM)
        yield browser
        browser.close()


@attrs.define
class Recorded:
    requests: list[str] = attrs.field(factory=list)
    frames: list[dict] = attrs.field(factory=list)
    console_errors: list[str] = attrs.field(factory=list)


@pytest.fixture
def page(browser, server, request):
    """A fresh page on the playground; records requests, socket frames and console errors."""
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    page = context.new_page()
    recorded = Recorded()
    page.on("request", lambda r: recorded.requests.append(r.url))
    page.on("console", lambda m: m.type == "error" and recorded.console_errors.append(m.text))

    def on_socket(socket) -> None:
        recorded.requests.append(socket.url)
        socket.on("framereceived", lambda payload: recorded.frames.append(json.loads(payload)))

    page.on("websocket", on_socket)
    page.recorded = recorded
    failed_before = request.session.testsfailed
    page.goto(server.url + "/")
    sync_api.expect(page.locator("#assistant option")).to_have_count(2)
    yield page
    if request.session.testsfailed > failed_before:
        ARTIFACTS.mkdir(exist_ok=True)
        shot = ARTIFACTS / f"{request.node.name}.png"
        page.screenshot(path=str(shot), full_page=True)
        print(f"screenshot of the failure: {shot}")  # noqa: T201 -- where to look
    context.close()
    outside = [
        url
        for url in recorded.requests
        if not url.startswith((server.url + "/", server.ws_url + "/"))
    ]
    assert outside == [], "the page reached outside its server"
    # A CSP violation or a script error shows in the console.
    assert recorded.console_errors == []


def send(page, text: str) -> None:
    page.get_by_label("Message", exact=True).fill(text)
    page.get_by_label("Message", exact=True).press("Enter")


def expect(locator):
    return sync_api.expect(locator)


def test_a_chat_streams_its_deltas_into_the_answer(page):
    send(page, "hello there")
    answer = page.locator("#transcript .msg.assistant .text")
    expect(answer).to_contain_text("This is the offline model")
    # The run's end shows after its last delta: only then are all the frames recorded.
    expect(page.locator("#transcript .usage")).to_contain_text("Run completed")
    deltas = [f["text"] for f in page.recorded.frames if f["type"] == "message.delta"]
    assert len(deltas) > 1  # streamed in pieces, not at once
    expect(answer).to_have_text("".join(deltas))
    expect(page.locator("#transcript .usage")).to_contain_text("output tokens")
    assert page.locator("#transcript").get_attribute("aria-live") == "polite"
    assert page.locator("#thread").input_value().strip()


def test_a_tool_call_is_shown_with_its_arguments_output_status_and_duration(page):
    send(page, "use add a=2 b=3")
    tool = page.locator("#transcript .tool")
    expect(tool.locator(".tool-name")).to_have_text("demo.add")
    expect(tool.locator(".tool-status")).to_have_text("ok")
    expect(tool).to_contain_text('"a": 2')
    expect(tool.locator(".tool-output")).to_contain_text("5.0")
    expect(tool.locator(".tool-duration")).to_contain_text(" ms")
    expect(page.locator("#transcript .msg.assistant").last).to_contain_text("demo.add returned 5.0")
    expect(page.locator("#transcript .usage")).to_contain_text("1 tool call")


def test_an_error_is_shown_as_an_error(page):
    send(page, "x" * (MAX_MESSAGE + 1))
    error = page.get_by_role("alert")
    expect(error).to_contain_text("invalid_input")
    expect(error).to_contain_text("too long")
    expect(page.locator("#send")).to_be_enabled()


def test_cancel_stops_the_run(page):
    send(page, "use wait seconds=30")
    expect(page.locator("#transcript .tool .tool-name")).to_have_text("t.wait")
    page.get_by_role("button", name="Cancel run").click()
    expect(page.locator("#transcript .usage")).to_contain_text("Run cancelled", timeout=10_000)
    expect(page.locator("#cancel")).to_be_disabled()
    assert any(f["type"] == "cancel.accepted" for f in page.recorded.frames)


def test_an_approval_is_asked_for_and_the_approved_call_runs(page):
    send(page, "use delete name=report")
    prompt = page.get_by_role("group", name="Approve t.delete")
    expect(prompt).to_contain_text('"name": "report"')
    prompt.get_by_role("button", name="Approve").click()
    expect(page.locator("#transcript .tool .tool-output")).to_contain_text("deleted report")
    expect(page.locator("#transcript .msg.assistant").last).to_contain_text("deleted report")
    types = [f["type"] for f in page.recorded.frames]
    assert "run.requires_approval" in types
    assert types[-1] == "run.completed"


def test_a_dropped_socket_is_resumed_and_the_run_finishes(page):
    send(page, "use wait seconds=1")
    expect(page.locator("#transcript .tool .tool-name")).to_have_text("t.wait")
    page.evaluate("window.playground.dropConnection()")
    expect(page.locator("#transcript .note").last).to_contain_text("Resuming the run after event")
    expect(page.locator("#transcript .tool .tool-status")).to_have_text("ok", timeout=10_000)
    expect(page.locator("#transcript .msg.assistant").last).to_contain_text("waited 1.0 s")
    expect(page.locator("#transcript .usage")).to_have_count(1)


def test_a_thread_s_history_is_reloaded(page, server):
    send(page, "remember me")
    expect(page.locator("#transcript .usage")).to_be_visible()
    thread = page.locator("#thread").input_value()
    page.goto(f"{server.url}/#thread={thread}")
    expect(page.locator("#transcript .msg.user")).to_have_text(["Youremember me"])
    expect(page.locator("#transcript .msg.assistant")).to_contain_text("remember me")
    page.get_by_role("button", name="New thread").click()
    expect(page.locator("#transcript .msg")).to_have_count(0)


def test_the_page_is_used_from_the_keyboard(page):
    page.keyboard.press("Tab")  # the API reference link first, then the controls in order
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "assistant"
    page.locator("#assistant").select_option("plain")
    page.get_by_role("button", name="New thread").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#transcript .note")).to_contain_text("with plain")
    expect(page.locator("#message")).to_be_focused()
    page.keyboard.type("hi")
    page.keyboard.press("Enter")
    expect(page.locator("#transcript .usage")).to_contain_text("Run completed")


def test_the_api_reference_renders_the_document(page, server):
    page.goto(server.url + "/docs")
    expect(page.locator("#op-chat")).to_contain_text("POST")
    expect(page.locator("#schema-Event")).to_contain_text("run.completed")


def test_screenshot_for_the_readme(page):
    send(page, "use add a=2 b=3")
    expect(page.locator("#transcript .usage")).to_contain_text("Run completed")
    send(page, "What is the forecast? use get_forecast city=Lisbon days=2")
    expect(page.locator("#transcript .usage")).to_have_count(2)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "playground.png"))


PLAYGROUND_KEY = "playground-key-0123456789abcdef"


def test_with_api_keys_on_the_page_asks_for_a_key_and_keeps_it_for_the_tab(browser):
    keys = ApiKeys.parse(json.dumps([{"id": "tester", "key": PLAYGROUND_KEY}]))
    with live_server(attrs.evolve(services(), api_keys=keys)) as keyed:
        context = browser.new_context()
        page = context.new_page()
        urls: list[str] = []
        page.on("request", lambda r: urls.append(r.url))
        page.on("websocket", lambda socket: urls.append(socket.url))
        page.goto(keyed.url + "/")
        # Without a key the page loads but the API says so.
        expect(page.get_by_role("alert").first).to_contain_text("unauthenticated")
        page.get_by_label("API key").fill(PLAYGROUND_KEY)
        page.get_by_label("API key").press("Tab")  # "change": stored, assistants reloaded
        expect(page.locator("#assistant option")).to_have_count(2)
        send(page, "use add a=2 b=3")
        expect(page.locator("#transcript .msg.assistant").last).to_contain_text(
            "demo.add returned 5.0"
        )
        page.reload()
        assert page.get_by_label("API key").input_value() == PLAYGROUND_KEY
        sockets = [url for url in urls if url.startswith(keyed.ws_url)]
        assert sockets
        assert all("?ticket=" in url for url in sockets)
        assert not any(PLAYGROUND_KEY in url for url in urls)  # never in a URL
        other_tab = context.new_page()
        other_tab.goto(keyed.url + "/")
        assert other_tab.get_by_label("API key").input_value() == ""  # kept for its tab only
        context.close()
