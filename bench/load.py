"""Load figures for the running service (offline model, 127.0.0.1, one server process).

Starts ``assistant-service serve`` as a subprocess, then prints:

- ``POST /chat`` requests per second, p50 and p99 latency at concurrency 1, 16 and 64;
- the time from sending a WebSocket frame to its first ``message.delta``;
- the server's memory per idle WebSocket (RSS before and after opening N sockets).

The client runs on the same machine and competes for the same cores: read the
figures as a floor. Bounded: each level runs ``--seconds`` (default 3) or
``--max-requests``, whichever ends first. Linux only (RSS from /proc).
Usage: ``python bench/load.py [--seconds 3] [--sockets 200]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx2
from websockets.asyncio.client import ClientConnection, connect

SOURCE = Path(__file__).resolve().parent.parent / "src"
# The offline model keeps history in memory and copies it on every step: a thread that
# grows for thousands of turns would measure that copy, not the service. Start afresh.
TURNS_PER_THREAD = 20


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def start_server(port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "PYTHONPATH": str(SOURCE),
        "LLM_BACKEND": "offline",
        "LOG_FORMAT": "json",
        "MAX_CONCURRENT_RUNS": "1024",
        "LOGGING_LEVEL": os.environ.get("BENCH_LOGGING_LEVEL", "INFO"),
        "PORT": str(port),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "assistant_service.entrypoints.cli", "serve", "--host", "127.0.0.1"],
        env=env,
        stdout=subprocess.DEVNULL,  # the access lines are formatted (a real cost), then dropped
        stderr=subprocess.DEVNULL,
    )


async def wait_ready(client: httpx2.AsyncClient) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if (await client.get("/healthz")).status_code == 200:
                return
        except httpx2.TransportError:  # noqa: PERF203 -- not up yet; poll again
            await asyncio.sleep(0.05)
    raise RuntimeError("the server did not start")


async def chat_level(
    client: httpx2.AsyncClient, concurrency: int, seconds: float, max_requests: int
) -> tuple[float, float, float, int]:
    latencies: list[float] = []
    errors = 0
    stop_at = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal errors
        turns = 0
        thread_id = ""
        while time.perf_counter() < stop_at and len(latencies) < max_requests:
            if turns % TURNS_PER_THREAD == 0:
                thread_id = (await client.get("/start")).json()["thread_id"]
            turns += 1
            started = time.perf_counter()
            response = await client.post(
                "/chat", json={"thread_id": thread_id, "message": "hello there"}
            )
            latencies.append(time.perf_counter() - started)
            errors += response.status_code != 200

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - began
    return len(latencies) / elapsed, percentile(latencies, 0.5), percentile(latencies, 0.99), errors


async def first_delta(ws_url: str, thread_id: str, runs: int) -> list[float]:
    timings = []
    async with connect(ws_url) as ws:
        for _ in range(runs):
            started = time.perf_counter()
            await ws.send(json.dumps({"thread_id": thread_id, "message": "hello there"}))
            seen = False
            while True:
                event = json.loads(await ws.recv())
                if event["type"] == "message.delta" and not seen:
                    timings.append(time.perf_counter() - started)
                    seen = True
                if event["type"] in {"run.completed", "error"}:
                    break
    return timings


async def idle_socket_memory(ws_url: str, pid: int, count: int) -> tuple[int, int]:
    await asyncio.sleep(0.5)
    before = rss_kib(pid)
    sockets: list[ClientConnection] = []
    try:
        for _ in range(count):
            sockets.append(await connect(ws_url))  # noqa: PERF401 -- one at a time, on purpose
        await asyncio.sleep(1.0)
        after = rss_kib(pid)
    finally:
        await asyncio.gather(*(ws.close() for ws in sockets))
    return before, after


async def main(seconds: float, sockets: int, max_requests: int) -> None:
    port = free_port()
    server = start_server(port)
    url, ws_url = f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}/stream"
    limits = httpx2.Limits(max_connections=128, max_keepalive_connections=128)
    try:
        async with httpx2.AsyncClient(base_url=url, limits=limits, timeout=30) as client:
            await wait_ready(client)
            await chat_level(client, 4, 0.5, max_requests)  # warm up
            print(f"POST /chat, offline model, {seconds:g} s per level")
            print(f"{'concurrency':>11} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6}")
            for concurrency in (1, 16, 64):
                rps, p50, p99, errors = await chat_level(client, concurrency, seconds, max_requests)
                print(
                    f"{concurrency:>11} {rps:>8.0f} {p50 * 1e3:>8.2f} {p99 * 1e3:>8.2f} {errors:>6}"
                )
            thread_id = (await client.get("/start")).json()["thread_id"]
        timings = await first_delta(ws_url, thread_id, 200)
        print(
            f"WebSocket frame -> first message.delta: p50 {statistics.median(timings) * 1e3:.2f} ms, "
            f"p99 {percentile(timings, 0.99) * 1e3:.2f} ms ({len(timings)} runs)"
        )
        before, after = await idle_socket_memory(ws_url, server.pid, sockets)
        print(
            f"idle WebSockets: RSS {before / 1024:.1f} MiB -> {after / 1024:.1f} MiB with {sockets} "
            f"open: {(after - before) / sockets:.1f} KiB per socket"
        )
    finally:
        server.terminate()
        server.wait(timeout=15)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--sockets", type=int, default=200)
    parser.add_argument("--max-requests", type=int, default=50_000)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.seconds, arguments.sockets, arguments.max_requests))
