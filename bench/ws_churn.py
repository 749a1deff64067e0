"""WebSocket churn: the server's memory across 5,000 socket open/close cycles, and its shutdown.

Starts ``assistant-service serve`` (offline model) as a subprocess, then opens
and closes ``--cycles`` WebSockets (``--concurrency`` at a time; each sends
one frame and reads its answer, as a page that loads and leaves would), and
prints the server's RSS before, just after the last close, and a second later;
its open file descriptors (closed sockets still held show there); then how
long a SIGTERM takes to stop it, and whether its log has an ERROR line.

``--source DIR`` runs another source tree (e.g. a checkout of an earlier
commit's ``src``) for comparison. Linux only (RSS and descriptors from /proc).
Usage: ``python bench/ws_churn.py [--cycles 5000] [--concurrency 50] [--source src]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx2
from websockets.asyncio.client import connect

SOURCE = Path(__file__).resolve().parent.parent / "src"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def open_descriptors(pid: int) -> int:
    return sum(1 for _ in Path(f"/proc/{pid}/fd").iterdir())


async def wait_ready(url: str) -> None:
    deadline = time.monotonic() + 20
    async with httpx2.AsyncClient(base_url=url) as client:
        while time.monotonic() < deadline:
            try:
                if (await client.get("/healthz")).status_code == 200:
                    return
            except httpx2.TransportError:  # noqa: PERF203 -- not up yet; poll again
                await asyncio.sleep(0.05)
    raise RuntimeError("the server did not start")


async def churn(ws_url: str, cycles: int, concurrency: int) -> int:
    """Open, use and close ``cycles`` sockets; how many failed."""
    remaining = cycles
    failures = 0

    async def worker() -> None:
        nonlocal remaining, failures
        while remaining > 0:
            remaining -= 1
            try:
                async with connect(ws_url, open_timeout=10, close_timeout=10) as ws:
                    await ws.send(json.dumps({"thread_id": "conv_missing", "message": "hi"}))
                    await asyncio.wait_for(ws.recv(), 10)  # an error event: unknown thread
            except (OSError, TimeoutError, ValueError):
                failures += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return failures


async def main(cycles: int, concurrency: int, source: Path) -> None:
    port = free_port()
    url, ws_url = f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}/stream"
    env = {
        **os.environ,
        "PYTHONPATH": str(source),
        "LLM_BACKEND": "offline",
        "LOG_FORMAT": "json",
        "LOGGING_LEVEL": "WARNING",  # access lines would dominate the log
        "PORT": str(port),
    }
    with tempfile.TemporaryFile() as log:
        server = subprocess.Popen(  # noqa: ASYNC220 -- once, before anything is measured
            [
                sys.executable,
                "-m",
                "assistant_service.entrypoints.cli",
                "serve",
                "--host",
                "127.0.0.1",
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            await wait_ready(url)
            await churn(ws_url, 200, concurrency)  # warm up: imports, caches, pools
            await asyncio.sleep(1.0)
            before, fds_before = rss_kib(server.pid), open_descriptors(server.pid)
            started = time.perf_counter()
            failures = await churn(ws_url, cycles, concurrency)
            elapsed = time.perf_counter() - started
            just_after, fds_after = rss_kib(server.pid), open_descriptors(server.pid)
            await asyncio.sleep(1.0)
            settled, fds_settled = rss_kib(server.pid), open_descriptors(server.pid)
            stopping = time.perf_counter()
            server.send_signal(signal.SIGTERM)
            code = server.wait(timeout=60)
            stopped = time.perf_counter() - stopping
        finally:
            if server.poll() is None:
                server.kill()
                server.wait()
        log.seek(0)
        lines = log.read().decode(errors="replace").splitlines()
    errors = sum(1 for line in lines if '"severity": "ERROR"' in line or "Traceback" in line)
    print(f"source: {source}")
    print(
        f"{cycles} WebSocket open/close cycles, {concurrency} at a time, in {elapsed:.1f} s "
        f"({cycles / elapsed:.0f}/s, {failures} failed)"
    )
    print(
        f"server RSS: {before / 1024:.1f} MiB before, {just_after / 1024:.1f} MiB after the last "
        f"close (+{(just_after - before) / 1024:.1f}), {settled / 1024:.1f} MiB a second later "
        f"(+{(settled - before) / 1024:.1f})"
    )
    print(f"open descriptors: {fds_before} before, {fds_after} after, {fds_settled} a second later")
    print(f"SIGTERM to exit: {stopped:.2f} s, exit code {code}, {errors} ERROR/traceback lines")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=5_000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--source", type=Path, default=SOURCE)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.cycles, arguments.concurrency, arguments.source.resolve()))
