"""Several ``assistant-service serve`` processes on one shared store (Redis, Firestore).

Every instance is a real process (``python -m assistant_service.entrypoints.cli
serve``) on the ``chat`` backend, talking to the loopback fake OpenAI server
of this test process; the fake records what each instance sent the model. The
assistant ``slow`` has one tool, ``slow.hold``, which waits for a gate file to
appear: a run can be caught mid-tool, killed there, paused there, or have
its store taken away there.

Starting a process costs about a second, so instances are shared where a test
leaves them as it found them: ``pair`` (two instances per store) serves the
tests that kill nothing; ``start_instances`` gives a test instances of its own
(killed after it); the Redis outage tests share ``own_redis`` and
``outage_pair``. Every wait is bounded by ``WAIT``; every process is killed
by the fixture that started it. Each instance logs to a file in the module's
workspace, and failures print its tail.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import functools
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import httpx2
import pytest
from websockets.sync.client import ClientConnection
from websockets.sync.client import connect as ws_connect

import assistant_service
from assistant_service.domain.tools import INTERRUPTED_OUTPUT
from fakeopenai import API_KEY, FakeOpenAI, start_fake_openai
from fakeopenai.chat import ChatScript, chat_calls, chat_reply
from support.servers import FIRESTORE_PROJECT, RedisServer, free_port

SOURCE = str(Path(assistant_service.__file__).parent.parent)
SERVE = (sys.executable, "-m", "assistant_service.entrypoints.cli", "serve")
HOLD = "slow__hold"  # the tool's name on the wire
LEASE_TTL = 2  # RUN_LOCK_TTL of every instance, in seconds
WAIT = 15.0  # the longest any single wait of these tests may take

TOOLS_PY = '''
import time
from pathlib import Path

from assistant_service.adapters.tools import tool

HERE = Path({here!r})


@tool
def hold(seconds: float) -> str:
    """Wait until the gate file appears, at most ``seconds``.

    Args:
        seconds: The longest to wait.
    """
    (HERE / "started").touch()
    deadline = time.monotonic() + seconds
    while not (HERE / "gate").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    return "held"
'''


@attrs.define
class Instance:
    """One server process, its URL and its log file."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def client(self) -> httpx2.Client:
        return httpx2.Client(base_url=self.url, timeout=WAIT)

    def kill(self) -> None:
        """SIGKILL: no lease released, no reply sent."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=WAIT)

    def terminate(self) -> None:
        """SIGTERM, as a host stops an instance; :meth:`wait` for the exit."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def wait(self) -> int:
        try:
            return self.process.wait(timeout=WAIT)
        except subprocess.TimeoutExpired:
            self.kill()
            raise

    def logs(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


@attrs.define
class Tool:
    """The gate and the start marker of ``slow.hold``."""

    folder: Path

    @property
    def started(self) -> bool:
        return (self.folder / "started").exists()

    def reset(self) -> None:
        (self.folder / "started").unlink(missing_ok=True)
        (self.folder / "gate").unlink(missing_ok=True)

    def open_gate(self) -> None:
        (self.folder / "gate").touch()


@attrs.define
class Launcher:
    """Starts instances on a store, all against one fake OpenAI, with one assistants directory."""

    openai_url: str
    assistants_dir: Path
    logs: Path
    started: list[Instance] = attrs.field(factory=list)

    def start(self, store: dict[str, str], count: int = 2) -> list[Instance]:
        """``count`` instances on ``store``, started together, once each answers ``/healthz``."""
        batch = [self._spawn(store) for _ in range(count)]
        for instance in batch:
            _wait_healthy(instance)
        return batch

    def _spawn(self, store: dict[str, str]) -> Instance:
        port = free_port()
        env = {
            **store,
            "PATH": os.environ.get("PATH", ""),
            "PYTHONPATH": SOURCE,
            "LLM_BACKEND": "chat",
            "OPENAI_API_KEY": API_KEY,
            "OPENAI_BASE_URL": self.openai_url,
            "OPENAI_MAX_RETRIES": "0",
            "OPENAI_TIMEOUT": "10",
            "ASSISTANTS_DIR": str(self.assistants_dir),
            "ASSISTANT_ID": "slow",
            "RUN_LOCK_TTL": str(LEASE_TTL),
            "GRACEFUL_TIMEOUT": "2",
            "LOG_FORMAT": "keyvalue",
            "PORT": str(port),
        }
        log = self.logs / f"instance-{len(self.started)}.log"
        # A file, not a pipe: nobody reads a pipe while the test runs, and a full one blocks.
        with log.open("wb") as output:
            process = subprocess.Popen(
                [*SERVE, "--host", "127.0.0.1"],
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        instance = Instance(f"http://127.0.0.1:{port}", process, log)
        self.started.append(instance)
        return instance

    def kill_all(self) -> None:
        for instance in self.started:
            instance.kill()


@pytest.fixture(scope="module")
def fake_openai() -> Iterator[FakeOpenAI]:
    fake = start_fake_openai()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def chat(fake_openai: FakeOpenAI) -> ChatScript:
    script: ChatScript = fake_openai.extensions["chat"]
    script.steps.clear()  # nothing left over from a test before
    return script


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The assistants directory, the tool's gate and the instances' logs."""
    root = tmp_path_factory.mktemp("shared-state")
    spec = root / "assistants" / "slow"
    spec.mkdir(parents=True)
    profile = {
        "model": "fake-model",
        "instructions": "Be brief.",
        "tools": ["hold"],
        "limits": {"tool_timeout": 30.0},
    }
    (spec / "profile.json").write_text(json.dumps(profile))
    (spec / "tools.py").write_text(TOOLS_PY.format(here=str(root)))
    return root


@pytest.fixture
def hold_tool(workspace: Path) -> Iterator[Tool]:
    tool = Tool(workspace)
    tool.reset()
    yield tool
    tool.open_gate()  # a tool still waiting in a live process returns


@pytest.fixture(scope="module", params=["redis", "firestore"])
def store_env(request: pytest.FixtureRequest) -> dict[str, str]:
    """The variables that put an instance on the shared store, apart from other tests."""
    if request.param == "redis":
        server = request.getfixturevalue("redis_server")
        prefix = f"e2e-shared-{uuid.uuid4().hex[:8]}:"
        return {"STATE_STORE": "redis", "REDIS_URL": server.url, "REDIS_KEY_PREFIX": prefix}
    host = request.getfixturevalue("firestore_emulator")
    # Conversation ids are random: tests on one emulator do not meet.
    return {
        "STATE_STORE": "firestore",
        "FIRESTORE_EMULATOR_HOST": host,
        "PROJECT_ID": FIRESTORE_PROJECT,
    }


@pytest.fixture(scope="module")
def launcher(fake_openai: FakeOpenAI, workspace: Path) -> Iterator[Launcher]:
    launcher = Launcher(fake_openai.base_url, workspace / "assistants", workspace)
    try:
        yield launcher
    finally:
        launcher.kill_all()


@pytest.fixture(scope="module")
def pair(launcher: Launcher, store_env: dict[str, str]) -> list[Instance]:
    """Two instances on the store, shared by the tests that leave them as they found them."""
    return launcher.start(store_env)


StartInstances = Callable[..., list[Instance]]


@pytest.fixture
def start_instances(launcher: Launcher) -> Iterator[StartInstances]:
    """``start_instances(store_env, count=2)``: instances of this test alone, killed after it."""
    mine: list[Instance] = []

    def start(store: dict[str, str], count: int = 2) -> list[Instance]:
        batch = launcher.start(store, count)
        mine.extend(batch)
        return batch

    try:
        yield start
    finally:
        for instance in mine:
            instance.kill()


def _wait_healthy(instance: Instance) -> None:
    deadline = time.monotonic() + 30
    with httpx2.Client(base_url=instance.url, timeout=2) as client:
        while True:
            with contextlib.suppress(httpx2.TransportError):
                if client.get("/healthz").status_code == 200:
                    return
            if instance.process.poll() is not None or time.monotonic() > deadline:
                instance.kill()
                pytest.fail(f"the instance did not start:\n{instance.logs()}")
            time.sleep(0.05)


def wait_until(condition: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


@contextlib.contextmanager
def in_background(call: Callable[[], Any]) -> Iterator[concurrent.futures.Future[Any]]:
    """Run ``call`` in a thread (a request that stays open while the test goes on)."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        yield pool.submit(call)


def start_thread(instance: Instance) -> str:
    with instance.client() as client:
        response = client.get("/start")
    assert response.status_code == 200, response.text
    return str(response.json()["thread_id"])


def post_chat(instance: Instance, thread_id: str, message: str) -> httpx2.Response:
    with instance.client() as client:
        return client.post("/chat", json={"thread_id": thread_id, "message": message})


def say(instance: Instance, thread_id: str, message: str) -> dict[str, Any]:
    response = post_chat(instance, thread_id, message)
    assert response.status_code == 200, f"{response.text}\n{instance.logs()}"
    return dict(response.json())


def history(instance: Instance, thread_id: str) -> list[tuple[str, str]]:
    with instance.client() as client:
        response = client.get(f"/threads/{thread_id}/messages", params={"limit": 100})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["has_more"] is False
    return [(message["role"], message["text"]) for message in body["messages"]]


def sent_messages(fake: FakeOpenAI) -> list[dict[str, Any]]:
    """The messages of the latest request the model received (the system message left out)."""
    body = fake.requests_to("chat.completions.create")[-1].body
    return [message for message in body["messages"] if message["role"] != "system"]


def error_code(response: httpx2.Response) -> str:
    return str(response.json()["error"]["code"])


def hold_call(call_id: str, seconds: float = 20) -> tuple[str, str, str]:
    return (call_id, HOLD, json.dumps({"seconds": seconds}))


def test_a_conversation_started_on_one_instance_continues_on_another(pair, fake_openai, chat):
    a, b = pair
    thread_id = start_thread(a)
    chat.play(chat_reply("Hello from A."))
    assert say(a, thread_id, "first, on A")["responses"] == ["Hello from A."]
    chat.play(chat_reply("Hello from B."))
    assert say(b, thread_id, "second, on B")["responses"] == ["Hello from B."]
    assert sent_messages(fake_openai) == [
        {"role": "user", "content": "first, on A"},
        {"role": "assistant", "content": "Hello from A."},
        {"role": "user", "content": "second, on B"},
    ]
    expected = [
        ("user", "first, on A"),
        ("assistant", "Hello from A."),
        ("user", "second, on B"),
        ("assistant", "Hello from B."),
    ]
    assert history(b, thread_id) == expected
    assert history(a, thread_id) == expected


def test_a_second_run_on_another_instance_is_a_conflict(pair, fake_openai, chat, hold_tool):
    a, b = pair
    thread_id = start_thread(a)
    chat.play(chat_calls(hold_call("call_held")), chat_reply("Held and done."))
    with in_background(lambda: post_chat(a, thread_id, "hold on A")) as running:
        wait_until(lambda: hold_tool.started, "the tool to start on A")
        conflict = post_chat(b, thread_id, "meanwhile, on B")
        assert conflict.status_code == 409, conflict.text
        assert error_code(conflict) == "conflict"
        with b.client() as client:  # the history is readable meanwhile
            assert client.get(f"/threads/{thread_id}/messages").status_code == 200
        hold_tool.open_gate()
        done = running.result(timeout=WAIT)
    assert done.status_code == 200, done.text
    assert done.json()["responses"] == ["Held and done."]
    # Released at the run's end: B runs the next turn at once.
    chat.play(chat_reply("Now B."))
    assert say(b, thread_id, "now, on B")["responses"] == ["Now B."]
    assert history(b, thread_id)[-2:] == [("user", "now, on B"), ("assistant", "Now B.")]


def test_an_instance_killed_mid_run_leaves_a_conversation_another_repairs(
    store_env, start_instances, pair, fake_openai, chat, hold_tool
):
    [a] = start_instances(store_env, count=1)  # to be killed
    b = pair[1]
    thread_id = start_thread(a)
    chat.play(chat_reply("Hi."))
    say(a, thread_id, "hello")
    chat.play(chat_calls(hold_call("call_killed")))
    with in_background(lambda: post_chat(a, thread_id, "hold on A")) as running:
        wait_until(lambda: hold_tool.started, "the tool to start on A")
        a.kill()
        killed_at = time.monotonic()
        with pytest.raises(httpx2.TransportError):
            running.result(timeout=WAIT)
    # A's lease outlives A until its ttl.
    conflict = post_chat(b, thread_id, "right after, on B")
    assert conflict.status_code == 409, conflict.text
    assert error_code(conflict) == "conflict"
    chat.play(chat_reply("Recovered on B."))
    while (response := post_chat(b, thread_id, "again, on B")).status_code == 409:
        assert time.monotonic() - killed_at < LEASE_TTL + 5, "the lease never lapsed"
        time.sleep(0.1)
    assert response.status_code == 200, f"{response.text}\n{b.logs()}"
    assert response.json()["responses"] == ["Recovered on B."]
    # The call A left unanswered is answered as interrupted, right after it.
    messages = sent_messages(fake_openai)
    [position] = [i for i, m in enumerate(messages) if m.get("tool_calls")]
    assert messages[position]["tool_calls"][0]["id"] == "call_killed"
    assert messages[position + 1 :] == [
        {"role": "tool", "tool_call_id": "call_killed", "content": INTERRUPTED_OUTPUT},
        {"role": "user", "content": "again, on B"},
    ]
    assert history(b, thread_id) == [
        ("user", "hello"),
        ("assistant", "Hi."),
        ("user", "hold on A"),
        ("user", "again, on B"),
        ("assistant", "Recovered on B."),
    ]


def test_a_run_that_lost_its_lease_cannot_write_after_the_new_holder(
    pair, fake_openai, chat, hold_tool
):
    a, b = pair
    thread_id = start_thread(a)
    chat.play(chat_calls(hold_call("call_paused")))
    with in_background(lambda: post_chat(a, thread_id, "hold on A")) as running:
        wait_until(lambda: hold_tool.started, "the tool to start on A")
        # A stalls (a long pause, a partition) past its lease; B takes the conversation.
        a.process.send_signal(signal.SIGSTOP)
        try:
            # B's turn; then A's late one, were A to ask the model before it noticed.
            chat.play(chat_reply("B took over."), chat_reply("A, too late."))
            deadline = time.monotonic() + LEASE_TTL + 5
            while (response := post_chat(b, thread_id, "on B")).status_code == 409:
                assert time.monotonic() < deadline, "the lease never lapsed"
                time.sleep(0.1)
            assert response.status_code == 200, response.text
            hold_tool.open_gate()
        finally:
            a.process.send_signal(signal.SIGCONT)
        late = running.result(timeout=WAIT)
    # A wakes up to a lease that is not its own any more: its run ends, unwritten.
    assert late.status_code == 409, f"{late.text}\n{a.logs()}"
    assert error_code(late) == "lease_lost"
    # A found out before it asked the model again (B's request was the last one).
    assert [step.text for step in chat.steps] == ["A, too late."]
    chat.steps.clear()
    chat.play(chat_reply("Still B."))
    say(b, thread_id, "again on B")
    messages = sent_messages(fake_openai)
    replies = [m for m in messages if m["role"] == "tool"]
    assert replies == [
        {"role": "tool", "tool_call_id": "call_paused", "content": INTERRUPTED_OUTPUT}
    ]
    assert [m["content"] for m in messages if m["role"] != "tool"][-4:] == [
        None,  # A's call, as A wrote it before it stalled
        "on B",
        "B took over.",
        "again on B",
    ]
    assert ("assistant", "A, too late.") not in history(b, thread_id)


def test_every_instance_restarted_loses_nothing(store_env, start_instances, fake_openai, chat):
    a, b = start_instances(store_env)
    thread_id = start_thread(a)
    chat.play(chat_reply("One."), chat_reply("Two."))
    say(a, thread_id, "turn 1, on A")
    say(b, thread_id, "turn 2, on B")
    before = history(a, thread_id)
    for instance in (a, b):
        instance.terminate()
    assert (a.wait(), b.wait()) == (0, 0), a.logs() + b.logs()
    [c] = start_instances(store_env, count=1)
    assert history(c, thread_id) == before
    chat.play(chat_reply("Three."))
    assert say(c, thread_id, "turn 3, on C")["responses"] == ["Three."]
    assert [m["content"] for m in sent_messages(fake_openai)] == [
        "turn 1, on A",
        "One.",
        "turn 2, on B",
        "Two.",
        "turn 3, on C",
    ]
    assert history(c, thread_id) == [*before, ("user", "turn 3, on C"), ("assistant", "Three.")]


@pytest.fixture(scope="module")
def own_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A redis-server of these tests alone (they stop it), keeping its data across a restart."""
    server = RedisServer(data_dir=tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def outage_pair(launcher: Launcher, own_redis: RedisServer) -> list[Instance]:
    """Two instances on ``own_redis``, shared by the tests that take it away."""
    return launcher.start(redis_env(own_redis))


@pytest.fixture
def redis_to_stop(own_redis: RedisServer) -> Iterator[RedisServer]:
    """``own_redis`` for a test to stop; started again after it, should the test fail first."""
    yield own_redis
    if not own_redis.running:
        own_redis.start()


def redis_env(server: RedisServer) -> dict[str, str]:
    return {"STATE_STORE": "redis", "REDIS_URL": server.url, "REDIS_KEY_PREFIX": "outage:"}


def readiness(instance: Instance) -> tuple[int, dict[str, str]]:
    with instance.client() as client:
        response = client.get("/readyz")
    return response.status_code, dict(response.json()["checks"])


def stream_events(instance: Instance, thread_id: str, message: str) -> list[dict[str, Any]]:
    """The events of a run streamed as server-sent events, until the server ends the stream."""
    headers = {"Accept": "text/event-stream"}
    body = {"thread_id": thread_id, "message": message}
    with (
        instance.client() as client,
        client.stream("POST", "/chat", json=body, headers=headers) as response,
    ):
        assert response.status_code == 200
        lines = list(response.iter_lines())
    return [json.loads(line.removeprefix("data: ")) for line in lines if line.startswith("data: ")]


def test_redis_gone_between_turns_is_a_503_and_the_same_instance_recovers(
    redis_to_stop, outage_pair, fake_openai, chat
):
    a, _ = outage_pair
    thread_id = start_thread(a)
    chat.play(chat_reply("Before."))
    say(a, thread_id, "before the outage")
    with ws_connect(a.url.replace("http://", "ws://") + "/stream", open_timeout=WAIT) as socket:
        redis_to_stop.stop()
        started = time.monotonic()
        response = post_chat(a, thread_id, "during the outage")
        assert time.monotonic() - started < WAIT
        assert response.status_code == 503, response.text
        assert error_code(response) == "state_store_unavailable"
        with a.client() as client:
            assert client.get("/start").status_code == 503
            assert client.get(f"/threads/{thread_id}/messages").status_code == 503
        [event] = ws_run(socket, thread_id, "during the outage, over a socket")
        assert (event["type"], event["code"]) == ("error", "state_store_unavailable")
        status, checks = readiness(a)
        assert status == 503
        assert checks["state_store"] == "state_store_unavailable"
        redis_to_stop.start()
        wait_until(lambda: readiness(a)[0] == 200, "/readyz to recover")
        chat.play(chat_reply("After."), chat_reply("Over the same socket."))
        assert say(a, thread_id, "after the outage")["responses"] == ["After."]
        # The socket that saw the outage serves the conversation again too.
        events = ws_run(socket, thread_id, "after it, over the socket")
        assert events[-1]["type"] == "run.completed", events
        assert events[-1]["responses"] == ["Over the same socket."]
    assert [m["content"] for m in sent_messages(fake_openai)] == [
        "before the outage",
        "Before.",
        "after the outage",
        "After.",
        "after it, over the socket",
    ]
    assert history(a, thread_id)[-4:] == [
        ("user", "after the outage"),
        ("assistant", "After."),
        ("user", "after it, over the socket"),
        ("assistant", "Over the same socket."),
    ]


def ws_run(socket: ClientConnection, thread_id: str, message: str) -> list[dict[str, Any]]:
    """Send one frame; the events it brings, up to the run's end or an ``error``."""
    socket.send(json.dumps({"thread_id": thread_id, "message": message}))
    events: list[dict[str, Any]] = []
    while not events or events[-1]["type"] not in {"run.completed", "error"}:
        events.append(json.loads(socket.recv(timeout=WAIT)))
    return events


@pytest.mark.parametrize("streamed", [True, False], ids=["stream", "json"])
def test_redis_gone_mid_run_is_a_clean_error_and_the_run_is_repaired_after(
    redis_to_stop, outage_pair, fake_openai, chat, hold_tool, streamed
):
    a, b = outage_pair
    thread_id = start_thread(a)
    chat.play(chat_calls(hold_call("call_cut")))
    run = functools.partial(stream_events if streamed else post_chat, a, thread_id, "hold on A")
    with in_background(run) as running:
        wait_until(lambda: hold_tool.started, "the tool to start on A")
        redis_to_stop.stop()
        outcome = running.result(timeout=WAIT)
    hold_tool.open_gate()
    if streamed:
        types = [event["type"] for event in outcome]
        assert types[0] == "run.started"
        assert "tool_call.started" in types
        # The run's failure, as the stream carries it: an ``error`` event, then the end.
        assert types[-1] == "error", outcome
        assert outcome[-1]["code"] == "state_store_unavailable", outcome
    else:
        assert outcome.status_code == 503, outcome.text
        assert error_code(outcome) == "state_store_unavailable"
    for instance in (a, b):
        status, checks = readiness(instance)
        assert (status, checks["state_store"]) == (503, "state_store_unavailable")
    redis_to_stop.start()
    # The same processes serve the conversation again, once A's lease has lapsed.
    chat.play(chat_reply("Back."))
    deadline = time.monotonic() + LEASE_TTL + 5
    while (response := post_chat(b, thread_id, "after the outage")).status_code in {409, 503}:
        assert time.monotonic() < deadline, response.text
        time.sleep(0.1)
    assert response.status_code == 200, f"{response.text}\n{b.logs()}"
    assert response.json()["responses"] == ["Back."]
    assert sent_messages(fake_openai)[-2:] == [
        {"role": "tool", "tool_call_id": "call_cut", "content": INTERRUPTED_OUTPUT},
        {"role": "user", "content": "after the outage"},
    ]
    chat.play(chat_reply("And A."))
    assert say(a, thread_id, "on A again")["responses"] == ["And A."]
    assert history(a, thread_id) == [
        ("user", "hold on A"),
        ("user", "after the outage"),
        ("assistant", "Back."),
        ("user", "on A again"),
        ("assistant", "And A."),
    ]
    assert readiness(a)[0] == 200
