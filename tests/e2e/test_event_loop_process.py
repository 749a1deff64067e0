"""``serve`` on each event loop: it says which one it runs, serves a chat and stops on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx2
import pytest
from service_process import free_port

import assistant_service

SOURCE = str(Path(assistant_service.__file__).parent.parent)


@pytest.mark.parametrize(
    ("how", "expected"),
    [
        (["--loop", "asyncio"], "asyncio"),
        (["--loop", "uvloop"], "uvloop"),
        ([], "uvloop"),  # auto, with uvloop installed
    ],
)
def test_serve_runs_on_the_loop_it_was_given(how, expected):
    pytest.importorskip("uvloop")
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": SOURCE,
        "LLM_BACKEND": "offline",
        "LOG_FORMAT": "json",
        "PORT": str(port),
    }
    command = [sys.executable, "-m", "assistant_service.entrypoints.cli", "serve"]
    process = subprocess.Popen(
        [*command, "--host", "127.0.0.1", *how],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        with httpx2.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            while True:
                try:
                    client.get("/healthz")
                    break
                except httpx2.TransportError:
                    assert process.poll() is None, process.communicate()[1]
                    assert time.monotonic() < deadline, "the server did not start"
                    time.sleep(0.05)
            thread_id = client.get("/start").json()["thread_id"]
            response = client.post("/chat", json={"thread_id": thread_id, "message": "hello"})
            assert response.status_code == 200
            assert response.json()["responses"]
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    [starting] = [line for line in lines if line["message"] == "server.starting"]
    assert starting["loop"] == expected
    assert "server.stopped" in [line["message"] for line in lines]
