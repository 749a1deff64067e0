"""Metrics and traces of ``serve`` as a real process: workers add up, a port of their own, console spans."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx2
import pytest
from prometheus_client.parser import text_string_to_metric_families

import assistant_service

SOURCE = str(Path(assistant_service.__file__).parent.parent)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start(workers: int, env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    port = free_port()
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "assistant_service.entrypoints.cli", "serve"),
            *("--host", "127.0.0.1", "--workers", str(workers)),
        ],
        env={
            "PATH": os.environ.get("PATH", ""),
            "PYTHONPATH": SOURCE,
            "LLM_BACKEND": "offline",
            "LOG_FORMAT": "json",
            "GRACEFUL_TIMEOUT": "2",
            "PORT": str(port),
            **env,
        },
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
                    return process, url
            except httpx2.TransportError:  # noqa: PERF203 -- polling until it answers
                if process.poll() is not None or time.monotonic() > deadline:
                    process.kill()
                    out, err = process.communicate()
                    pytest.fail(f"server did not start:\n{out}\n{err}")
                time.sleep(0.05)


def stop(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=15)
    assert process.returncode == 0, err
    return out


def chats(url: str, turns: int) -> None:
    with httpx2.Client(base_url=url, timeout=5) as client:
        thread_id = client.get("/start").json()["thread_id"]
    for turn in range(turns):
        # A connection per turn: the workers take turns accepting them.
        with httpx2.Client(base_url=url, timeout=5) as connection:
            response = connection.post(
                "/chat", json={"thread_id": thread_id, "message": f"turn {turn}"}
            )
        assert response.status_code == 200, response.text


def figures(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def completed_runs(found) -> float:
    return sum(
        value
        for (name, labels), value in found.items()
        if name == "assistant_runs_total" and ("status", "completed") in labels
    )


@pytest.mark.parametrize("own_port", [False, True], ids=["main port", "METRICS_PORT"])
def test_the_figures_of_two_workers_add_up(redis_server, own_port, tmp_path):
    env = {"STATE_STORE": "redis", "REDIS_URL": redis_server.url, "REDIS_KEY_PREFIX": "metrics:"}
    metrics_port = free_port()
    if own_port:
        env["METRICS_PORT"] = str(metrics_port)
    process, url = start(2, env)
    try:
        chats(url, 12)
        metrics_url = f"http://127.0.0.1:{metrics_port}" if own_port else url
        with httpx2.Client(base_url=metrics_url, timeout=5) as client:
            found = figures(client.get("/metrics").text)
            main = httpx2.get(f"{url}/metrics", timeout=5)
        assert completed_runs(found) == 12
        assert (
            found[
                (
                    "assistant_http_requests_total",
                    frozenset({"route": "/chat", "method": "POST", "status": "200"}.items()),
                )
            ]
            == 12
        )
        assert main.status_code == (404 if own_port else 200)
    finally:
        stop(process)


def test_the_console_exporter_prints_the_spans_of_a_chat():
    process, url = start(1, {"OTEL_TRACES_EXPORTER": "console", "OTEL_SERVICE_NAME": "e2e"})
    try:
        chats(url, 1)
    finally:
        out = stop(process)
    assert '"name": "POST /chat"' in out
    assert '"name": "invoke_agent ' in out
    assert '"gen_ai.operation.name": "chat"' in out
    assert '"service.name": "e2e"' in out
