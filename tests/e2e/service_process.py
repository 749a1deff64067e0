"""``assistant-service serve`` as a process on a free port of 127.0.0.1 (offline model)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2

import assistant_service

SOURCE = str(Path(assistant_service.__file__).parent.parent)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def serving(extra_env: dict[str, str] | None = None) -> Iterator[str]:
    """The service, on the offline model, until the block ends; yields its base URL."""
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": SOURCE,
        "LLM_BACKEND": "offline",
        "LOG_FORMAT": "json",
        "LOGGING_LEVEL": "WARNING",
        "GRACEFUL_TIMEOUT": "1",
        "PORT": str(port),
        **(extra_env or {}),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "assistant_service.entrypoints.cli", "serve", "--host", "127.0.0.1"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    try:
        with httpx2.Client(base_url=url, timeout=2) as client:
            while True:
                try:
                    if client.get("/healthz").status_code == 200:
                        break
                except httpx2.TransportError:
                    if process.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(
                            f"the server did not start: {process.stderr.read()}"
                        ) from None
                    time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        process.stderr.close()
