"""``python -m assistant_service.entrypoints.cli serve`` as a real process: logs, SIGTERM, secrets."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx2
import pytest

import assistant_service

SECRET = "sk-e2e-Zt9vQ2mXw8LbR4nK"
SOURCE = str(Path(assistant_service.__file__).parent.parent)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def workers() -> int:
    return 1


@pytest.fixture
def extra_env(request) -> dict[str, str]:
    """More variables for the process: ``"redis"`` (indirect parameter) shares a redis-server."""
    if getattr(request, "param", None) == "redis":
        server = request.getfixturevalue("redis_server")
        return {"STATE_STORE": "redis", "REDIS_URL": server.url, "REDIS_KEY_PREFIX": "cli-e2e:"}
    return {}


@pytest.fixture
def service_process(workers, extra_env):
    port = free_port()
    env = {
        **extra_env,
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": SOURCE,
        "OPENAI_API_KEY": SECRET,
        "LLM_BACKEND": "offline",
        "LOG_FORMAT": "json",
        "LOGGING_LEVEL": "DEBUG",
        "GRACEFUL_TIMEOUT": "2",
        "PORT": str(port),
    }
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "assistant_service.entrypoints.cli", "serve"),
            *("--host", "127.0.0.1", "--workers", str(workers)),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    with httpx2.Client(base_url=url, timeout=2) as client:
        while True:
            try:
                if client.get("/healthz").status_code == 200:
                    break
            except httpx2.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    process.kill()
                    out, err = process.communicate()
                    pytest.fail(f"server did not start:\n{out}\n{err}")
                time.sleep(0.05)
    yield process, url
    if process.poll() is None:
        process.kill()
        process.communicate()
    for stream in (process.stdout, process.stderr):
        if stream is not None:
            stream.close()


def test_the_process_logs_json_never_logs_the_secret_and_stops_on_sigterm(service_process):
    process, url = service_process
    with httpx2.Client(base_url=url, timeout=5) as client:
        thread_id = client.get("/start").json()["thread_id"]
        response = client.post(
            "/chat",
            json={"thread_id": thread_id, "message": "use add a=2 b=3"},
            headers={"Authorization": f"Bearer {SECRET}", "X-Correlation-ID": "cli-e2e"},
        )
        assert response.status_code == 200
        assert "5.0" in response.json()["responses"][0]
        assert client.get("/readyz").json()["checks"]["secrets"] == "ok"
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=10)
    assert process.returncode == 0, err
    assert SECRET not in out
    assert SECRET not in err
    lines = [json.loads(line) for line in out.splitlines()]
    assert all({"severity", "timestamp", "message"} <= set(line) for line in lines)
    access = [line for line in lines if line.get("logger") == "assistant_service.access"]
    assert {line["path"] for line in access} >= {"/healthz", "/start", "/chat", "/readyz"}
    [chat] = [line for line in access if line["path"] == "/chat"]
    assert chat["correlation_id"] == "cli-e2e"
    assert chat["status"] == 200
    messages = [line["message"] for line in lines]
    assert any(message.startswith("Running on http://127.0.0.1") for message in messages)
    assert "server.stopped" in messages
    assert not any(line.get("logger") == "hypercorn.access" for line in lines)


def test_production_without_its_variables_refuses_to_start():
    done = subprocess.run(
        [sys.executable, "-m", "assistant_service.entrypoints.cli", "serve"],
        env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": SOURCE, "ENVIRONMENT": "production"},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "assistant-service: invalid settings: production requires PROJECT_ID, BUCKET_ID, ASSISTANT_ID"
    )


def test_several_workers_on_the_memory_store_refuse_to_start():
    done = subprocess.run(
        [sys.executable, "-m", "assistant_service.entrypoints.cli", "serve", "--workers", "2"],
        env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": SOURCE, "LLM_BACKEND": "offline"},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()
    assert "STATE_STORE=redis" in line
    assert "--workers 2" in line


@pytest.mark.parametrize("extra_env", ["redis"], indirect=True)
@pytest.mark.parametrize("workers", [2])
def test_several_workers_share_the_port_and_all_stop_on_sigterm(service_process):
    process, url = service_process
    with httpx2.Client(base_url=url, timeout=5) as client:
        statuses = {client.get("/healthz").status_code for _ in range(10)}
        thread_id = client.get("/start").json()["thread_id"]
        # Twelve turns on one thread, whichever worker takes each connection.
        for turn in range(12):
            with httpx2.Client(base_url=url, timeout=5) as connection:
                response = connection.post(
                    "/chat", json={"thread_id": thread_id, "message": f"turn {turn}"}
                )
            assert response.status_code == 200, response.text
        assert client.get("/readyz").json()["checks"]["state_store"] == "ok"
    assert statuses == {200}
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=15)
    assert process.returncode == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    started = [line for line in lines if line["message"].startswith("Running on")]
    stopped = [line for line in lines if line["message"] == "server.stopped"]
    assert len(started) == len(stopped) == 2
