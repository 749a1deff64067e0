"""The CLI as a process, as a newcomer meets it: no traceback for a user error; --reload."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx2
import pytest

import assistant_service

SOURCE = str(Path(assistant_service.__file__).parent.parent)
ASSISTANTS = Path(__file__).parents[2] / "assistants"
CLI = (sys.executable, "-m", "assistant_service.entrypoints.cli")


def cli_env(**extra: str) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": SOURCE, **extra}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_reader_that_stops_early_ends_the_command_quietly():
    # `assistant-service tools show weather | head -1`, with the reader gone at once.
    process = subprocess.Popen(
        [*CLI, "tools", "show", "weather", "--assistants-dir", str(ASSISTANTS)],
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    process.stdout.close()
    _, err = process.communicate(timeout=60)
    assert err == ""
    assert process.returncode == 1


def test_a_busy_port_says_so_and_exits_2():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run(
            [*CLI, "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=cli_env(LLM_BACKEND="offline"),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines()[-1] == (
        f"assistant-service: cannot listen on 127.0.0.1:{port}: the port is in use "
        "(another server?); stop it, or pick another port with --port or PORT"
    )
    assert "Traceback" not in done.stderr


def wait_until(check, what: str, process: subprocess.Popen[str], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            if check():
                return
        except httpx2.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            out, err = process.communicate()
            pytest.fail(f"{what}:\n{out}\n{err}")
        time.sleep(0.1)


def test_serve_reload_restarts_on_a_spec_change(tmp_path):
    specs = tmp_path / "assistants"
    shutil.copytree(ASSISTANTS / "weather", specs / "weather")
    port = free_port()
    process = subprocess.Popen(
        [*CLI, "serve", "--reload", "--host", "127.0.0.1", "--port", str(port)],
        env=cli_env(
            LLM_BACKEND="offline",
            ASSISTANTS_DIR=str(specs),
            LOG_FORMAT="json",
            GRACEFUL_TIMEOUT="1",
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        with httpx2.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            wait_until(lambda: client.get("/healthz").status_code == 200, "did not start", process)
            assert client.get("/start", params={"assistant_id": "forecast"}).status_code == 404

            # A new spec directory: the server picks it up without being restarted by hand.
            shutil.copytree(specs / "weather", specs / "forecast")
            wait_until(
                lambda: (
                    client.get("/start", params={"assistant_id": "forecast"}).status_code == 200
                ),
                "did not reload",
                process,
            )
            assert client.get("/start", params={"assistant_id": "weather"}).status_code == 200
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert '"server.reloading"' in out + err
    assert "Traceback" not in out + err
