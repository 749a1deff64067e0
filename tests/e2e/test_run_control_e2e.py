"""Steering runs end to end: two ``serve`` processes on real sockets, sharing one redis-server.

Instance A runs the turn, instance B steers it (cancel, approvals, resume, polling):
nothing about a run may live only in the memory of the process that runs it.
The assistant is a spec directory written per test, with the offline model
(``use <tool> key=value`` calls the tool) and tools the test can hold and watch:

- ``wait_for(name)``: async, waits until the file ``name`` exists in the markers directory;
- ``nap(seconds)``: sync (a worker thread), sleeps, then writes ``nap-done``;
- ``pay(amount)``: needs a person's approval; writes ``paid-<amount>`` when it runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import attrs
import httpx2
import pytest

import assistant_service
from support.servers import HOST, RedisServer, free_port

SOURCE = str(Path(assistant_service.__file__).parent.parent)
SSE = {"Accept": "text/event-stream"}
TIMEOUT = httpx2.Timeout(5.0)
FINAL = {"run.completed", "run.requires_approval", "run.cancelled", "error"}

TOOLS = '''
"""Tools an end-to-end test holds, watches and steers."""

from __future__ import annotations

import time
from pathlib import Path

import anyio

from assistant_service.adapters.tools import tool

MARKERS = Path({markers!r})


@tool
async def wait_for(name: str) -> str:
    """Wait until the test creates the file.

    Args:
        name: The file to wait for.
    """
    (MARKERS / f"waiting-{{name}}").touch()
    while not (MARKERS / name).exists():
        await anyio.sleep(0.02)
    return f"released {{name}}"


@tool
def nap(seconds: float) -> str:
    """Sleep in a worker thread.

    Args:
        seconds: How long.
    """
    (MARKERS / "nap-started").touch()
    time.sleep(seconds)
    (MARKERS / "nap-done").touch()
    return "rested"


@tool(requires_approval=True)
def pay(amount: int) -> str:
    """Pay; a person approves each call.

    Args:
        amount: How much.
    """
    (MARKERS / f"paid-{{amount}}").touch()
    return f"paid {{amount}}"
'''

PROFILE = {
    "model": "offline",
    "instructions": "Steerable runs.",
    "tools": ["wait_for", "nap", "pay"],
    "limits": {"max_tool_rounds": 3, "tool_timeout": 30.0},
}


@attrs.frozen
class Instance:
    name: str
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def client(self) -> httpx2.Client:
        return httpx2.Client(base_url=self.url, timeout=TIMEOUT)


@attrs.frozen
class Pair:
    a: Instance
    b: Instance
    markers: Path

    def marker(self, name: str) -> Path:
        return self.markers / name

    def wait_for_marker(self, name: str, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.marker(name).exists():
            assert time.monotonic() < deadline, f"no {name} after {timeout} s"
            time.sleep(0.01)


def _spec_directory(root: Path, markers: Path) -> Path:
    spec = root / "assistants" / "ctl"
    spec.mkdir(parents=True)
    (spec / "profile.json").write_text(json.dumps(PROFILE))
    (spec / "tools.py").write_text(TOOLS.format(markers=str(markers)))
    return spec.parent


def _start(name: str, env: dict[str, str], tmp_path: Path) -> Instance:
    port = free_port()
    log = tmp_path / f"{name}.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "assistant_service.entrypoints.cli", "serve", "--host", HOST],
            env={**env, "PORT": str(port)},
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    return Instance(name, f"http://{HOST}:{port}", process, log)


def _wait_healthy(instance: Instance, deadline: float) -> None:
    with httpx2.Client(base_url=instance.url, timeout=1) as client:
        while True:
            try:
                if client.get("/healthz").status_code == 200:
                    return
            except httpx2.TransportError:
                pass
            if instance.process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"{instance.name} did not start:\n{instance.log.read_text()[-3000:]}")
            time.sleep(0.05)


def _kill(instance: Instance) -> None:
    if instance.process.poll() is None:
        instance.process.kill()
    instance.process.wait(timeout=10)


@pytest.fixture
def pair(redis_server: RedisServer, tmp_path: Path) -> Iterator[Pair]:
    markers = tmp_path / "markers"
    markers.mkdir()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": SOURCE,
        "LLM_BACKEND": "offline",
        "STATE_STORE": "redis",
        "REDIS_URL": redis_server.url,
        "REDIS_KEY_PREFIX": f"e2e-runs-{uuid.uuid4().hex[:12]}:",
        "ASSISTANTS_DIR": str(_spec_directory(tmp_path, markers)),
        "ASSISTANT_ID": "ctl",
        "LOG_FORMAT": "keyvalue",
        "GRACEFUL_TIMEOUT": "1",
    }
    instances: list[Instance] = []
    try:
        instances = [_start(name, env, tmp_path) for name in ("a", "b")]
        deadline = time.monotonic() + 20
        for instance in instances:
            _wait_healthy(instance, deadline)
        yield Pair(instances[0], instances[1], markers)
    finally:
        for instance in instances:
            _kill(instance)
        # Captured: pytest shows it only when the test fails.
        for instance in instances:
            sys.stdout.write(f"--- {instance.name} log ---\n{instance.log.read_text()[-4000:]}\n")


def sse_events(response: httpx2.Response) -> Iterator[tuple[str | None, dict]]:
    """(the ``id:`` field, the payload) of each server-sent event, as they arrive."""
    fields: dict[str, str] = {}
    for line in response.iter_lines():
        if line:
            key, _, value = line.partition(":")
            fields[key] = value.removeprefix(" ")
            continue
        if "data" in fields:
            yield fields.get("id"), json.loads(fields["data"])
        fields = {}


def read_until(events: Iterator[tuple[str | None, dict]], kind: str) -> list[dict]:
    """Events up to and including the first of type ``kind``."""
    seen = []
    for _, event in events:
        seen.append(event)
        if event["type"] == kind:
            return seen
    pytest.fail(f"the stream ended without {kind}: {[e['type'] for e in seen]}")


def new_thread(client: httpx2.Client) -> str:
    response = client.get("/start")
    assert response.status_code == 200, response.text
    return response.json()["thread_id"]


def run_url(thread_id: str, run_id: str, verb: str = "") -> str:
    return f"/threads/{thread_id}/runs/{run_id}" + (f"/{verb}" if verb else "")


def poll_status(
    client: httpx2.Client, thread_id: str, run_id: str, want: str, timeout: float = 5.0
) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        response = client.get(run_url(thread_id, run_id))
        assert response.status_code == 200, response.text
        body = response.json()
        if body["status"] == want:
            return body
        assert time.monotonic() < deadline, f"still {body['status']} after {timeout} s: {body}"
        time.sleep(0.05)


def untraced(event: dict) -> dict:
    """The event without the correlation id of the request that carried it."""
    return {key: value for key, value in event.items() if key != "correlation_id"}


def assert_whole_run(events: list[dict], run_id: str) -> None:
    """One run, ``seq`` 1..n without a gap or a repeat, exactly one final event, last."""
    assert {e["run_id"] for e in events} == {run_id}
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert [e["type"] for e in events if e["type"] in FINAL] == [events[-1]["type"]]


def test_cancel_on_b_a_run_streaming_from_a(pair):
    with pair.a.client() as a, pair.b.client() as b:
        thread_id = new_thread(a)
        body = {"thread_id": thread_id, "message": "use wait_for name=never"}
        with a.stream("POST", "/chat", json=body, headers=SSE) as stream:
            assert stream.status_code == 200
            events = sse_events(stream)
            seen = read_until(events, "tool_call.started")
            run_id = seen[0]["run_id"]
            pair.wait_for_marker("waiting-never")

            response = b.post(run_url(thread_id, run_id, "cancel"))
            assert response.status_code == 202, response.text
            assert response.json() == {"run_id": run_id, "status": "cancelling"}
            # The tool waits for a file that never comes: the run ending proves the cancel.
            seen += read_until(events, "run.cancelled")
            assert list(events) == []  # nothing after the final event
        assert_whole_run(seen, run_id)
        assert seen[-1]["status"] == "cancelled"

        for client in (a, b):
            assert client.get(run_url(thread_id, run_id)).json()["status"] == "cancelled"
        # A cancel after the end is refused.
        assert b.post(run_url(thread_id, run_id, "cancel")).status_code == 409

        # The lease is free and the next turn works, on either instance.
        response = b.post("/chat", json={"thread_id": thread_id, "message": "hello again"})
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "completed"
        assert "hello again" in response.json()["responses"][0]
    assert not pair.marker("never").exists()


def test_resume_on_b_after_dropping_an_sse_stream_from_a(pair):
    with pair.a.client() as a, pair.b.client() as b:
        thread_id = new_thread(a)
        body = {
            "thread_id": thread_id,
            "message": "use wait_for name=go",
            "on_disconnect": "continue",
        }
        with a.stream("POST", "/chat", json=body, headers=SSE) as stream:
            assert stream.status_code == 200
            events = sse_events(stream)
            first = []
            for event_id, event in events:
                assert event_id == str(event["seq"])
                first.append(event)
                if event["type"] == "tool_call.started":
                    break
        # The connection is closed: the client left in the middle of the run.
        run_id = first[0]["run_id"]
        pair.wait_for_marker("waiting-go")
        assert b.get(run_url(thread_id, run_id)).json()["status"] == "in_progress"

        last = str(first[-1]["seq"])
        url = run_url(thread_id, run_id, "events")
        with b.stream("GET", url, headers={**SSE, "Last-Event-ID": last}) as resumed:
            assert resumed.status_code == 200
            events = sse_events(resumed)
            # The run still waits: let it go while B follows it live.
            (pair.markers / "go").touch()
            rest = [event for _, event in events]
        assert rest, "nothing after the last event seen"
        assert rest[0]["seq"] == first[-1]["seq"] + 1
        assert_whole_run(first + rest, run_id)
        assert rest[-1]["type"] == "run.completed"
        assert "released go" in rest[-1]["responses"][0]
        assert [e["type"] for e in rest].count("tool_call.completed") == 1

        # ?after=N replays the same from any instance once it ended.
        replay = a.get(f"{url}?after={last}", headers=SSE)
        assert [untraced(event) for _, event in sse_events(replay)] == list(map(untraced, rest))
        assert a.get(run_url(thread_id, run_id)).json()["status"] == "completed"


def test_approve_on_one_instance_and_deny_on_the_other(pair):
    with pair.a.client() as a, pair.b.client() as b:
        thread_id = new_thread(a)
        # JSON: the run stops before the call and answers with what is pending.
        response = a.post("/chat", json={"thread_id": thread_id, "message": "use pay amount=1"})
        assert response.status_code == 200, response.text
        stopped = response.json()
        assert stopped["status"] == "requires_approval"
        [pending] = stopped["pending"]
        assert pending["name"] == "ctl.pay"
        assert json.loads(pending["arguments"]) == {"amount": 1}
        run_id = stopped["run_id"]
        assert b.get(run_url(thread_id, run_id)).json()["status"] == "requires_approval"
        assert not pair.marker("paid-1").exists()

        # Approved on B, streamed: the continuation runs the call.
        decisions = {"decisions": [{"call_id": pending["id"], "approve": True}]}
        url = run_url(thread_id, run_id, "approvals")
        with b.stream("POST", url, json=decisions, headers=SSE) as stream:
            assert stream.status_code == 200
            continued = [event for _, event in sse_events(stream)]
        assert continued[0]["type"] == "run.started"
        assert continued[0]["resumes"] == run_id
        assert_whole_run(continued, continued[0]["run_id"])
        [done] = [e for e in continued if e["type"] == "tool_call.completed"]
        assert (done["id"], done["status"], done["output"]) == (pending["id"], "ok", "paid 1")
        assert continued[-1]["type"] == "run.completed"
        assert pair.marker("paid-1").exists()
        # A decision is taken once, from any instance.
        assert a.post(url, json=decisions).status_code == 409

        # Streamed on B this time: the approval events, then denied on A.
        body = {"thread_id": thread_id, "message": "use pay amount=2"}
        with b.stream("POST", "/chat", json=body, headers=SSE) as stream:
            stopped_events = [event for _, event in sse_events(stream)]
        run_id = stopped_events[0]["run_id"]
        assert_whole_run(stopped_events, run_id)
        [waiting] = [e for e in stopped_events if e["type"] == "tool_call.approval_required"]
        assert waiting["name"] == "ctl.pay"
        final = stopped_events[-1]
        assert final["type"] == "run.requires_approval"
        assert [p["id"] for p in final["pending"]] == [waiting["id"]]

        denial = {"call_id": waiting["id"], "approve": False, "reason": "over budget"}
        response = a.post(run_url(thread_id, run_id, "approvals"), json={"decisions": [denial]})
        assert response.status_code == 200, response.text
        result = response.json()
        assert result["status"] == "completed"
        assert "over budget" in result["responses"][0]
        assert not pair.marker("paid-2").exists()  # the function was never called
        [call] = result["tool_calls"]
        assert (call["id"], call["status"]) == (waiting["id"], "denied")
        continuation = b.get(run_url(thread_id, result["run_id"])).json()
        assert continuation["status"] == "completed"


def test_a_background_run_polled_to_completion_on_the_other_instance(pair):
    with pair.a.client() as a, pair.b.client() as b:
        thread_id = new_thread(a)
        body = {"thread_id": thread_id, "message": "use wait_for name=bg", "background": True}
        response = a.post("/chat", json=body)
        assert response.status_code == 202, response.text
        started = response.json()
        assert started["status"] == "in_progress"
        assert started["thread_id"] == thread_id
        run_id = started["run_id"]

        pair.wait_for_marker("waiting-bg")
        assert b.get(run_url(thread_id, run_id)).json()["status"] == "in_progress"
        # A second turn meanwhile, from the other instance, finds the thread busy.
        busy = b.post("/chat", json={"thread_id": thread_id, "message": "hi"})
        assert busy.status_code == 409, busy.text

        (pair.markers / "bg").touch()
        done = poll_status(b, thread_id, run_id, "completed")
        assert done["run_id"] == run_id
        assert "released bg" in done["result"]["responses"][0]


def test_a_run_cancelled_while_a_sync_tool_sleeps_ends_at_once(pair):
    with pair.a.client() as a, pair.b.client() as b:
        thread_id = new_thread(a)
        body = {"thread_id": thread_id, "message": "use nap seconds=4"}
        with a.stream("POST", "/chat", json=body, headers=SSE) as stream:
            assert stream.status_code == 200
            events = sse_events(stream)
            seen = read_until(events, "tool_call.started")
            run_id = seen[0]["run_id"]
            pair.wait_for_marker("nap-started")

            assert b.post(run_url(thread_id, run_id, "cancel")).status_code == 202
            seen += read_until(events, "run.cancelled")
        assert_whole_run(seen, run_id)
        # The worker thread sleeps on; the run did not wait for it.
        assert not pair.marker("nap-done").exists()
        assert b.get(run_url(thread_id, run_id)).json()["status"] == "cancelled"

        # Both instances serve, and the thread takes its next turn, while the thread sleeps.
        response = a.post("/chat", json={"thread_id": thread_id, "message": "still there?"})
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "completed"
        assert not pair.marker("nap-done").exists()
