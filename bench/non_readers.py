"""Clients that never read: what 64 of them cost the server, and how long they block the others.

Starts the fake OpenAI of the tests (a long answer, 1 MiB of text, for every
run) and ``assistant-service serve`` on ``LLM_BACKEND=chat`` with
``MAX_CONCURRENT_RUNS`` equal to the number of non-readers, opens ``--clients``
streams (half SSE, half WebSocket, receive buffers as small as the kernel
allows) that read nothing, and once every one's run has started, asks one
``POST /chat`` (retrying while ``503 overloaded``). It prints the time until
that chat is served (bounded by ``--max-wait``), the server's RSS before, at
its peak and a second after the last drop, and how many non-readers the
server dropped, and when.

``--source DIR`` runs another source tree for comparison. Linux only.
Usage: ``PYTHONPATH=src:tests python bench/non_readers.py [--clients 64] [--send-timeout 2]``.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import socket
import tempfile
import threading
import time
from functools import partial
from pathlib import Path

from e2e.chat_service import ChatService, chat_service, sse_non_reader, ws_non_reader
from fakeopenai import start_fake_openai
from fakeopenai.chat import ChatScript, chat_reply

SOURCE = Path(__file__).resolve().parent.parent / "src"
ROUTE = "chat.completions.create"


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def open_non_reader(service: ChatService, index: int, thread_id: str) -> socket.socket:
    if index % 2:
        return ws_non_reader(service.ws_url, thread_id, "tell me everything")
    return sse_non_reader(service.url, thread_id, "tell me everything")


def served_after(service: ChatService, thread_id: str, max_wait: float) -> tuple[float | None, int]:
    """Seconds until ``POST /chat`` is served (None: not within ``max_wait``), and 503s seen."""
    started = time.monotonic()
    refused = 0
    with service.client() as client:
        while time.monotonic() - started < max_wait:
            response = client.post("/chat", json={"thread_id": thread_id, "message": "hi"})
            if response.status_code == 200:
                return time.monotonic() - started, refused
            refused += 1
            time.sleep(0.1)
    return None, refused


def main(clients: int, send_timeout: float, max_wait: float, source: Path) -> None:
    fake = start_fake_openai()
    script: ChatScript = fake.extensions["chat"]
    script.default = chat_reply("", deltas=("x" * 4_096,) * 256)
    sockets: list[socket.socket] = []
    with (
        tempfile.TemporaryDirectory() as folder,
        chat_service(
            fake.base_url,
            Path(folder) / "service.log",
            PYTHONPATH=str(source),
            SEND_TIMEOUT=str(send_timeout),
            MAX_CONCURRENT_RUNS=str(clients),
            OPENAI_MAX_RETRIES="3",
            LOGGING_LEVEL="WARNING",
        ) as service,
    ):
        pid = service.process.pid
        threads = [service.start_thread() for _ in range(clients + 1)]
        time.sleep(0.5)
        before = rss_kib(pid)
        peak = [before]
        sampling = threading.Event()

        def sample() -> None:
            while not sampling.wait(0.2):
                peak[0] = max(peak[0], rss_kib(pid))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        asked = len(fake.requests_to(ROUTE))
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            sockets = list(pool.map(partial(open_non_reader, service), range(clients), threads))
        deadline = time.monotonic() + max_wait
        while len(fake.requests_to(ROUTE)) < asked + clients and time.monotonic() < deadline:
            time.sleep(0.05)
        all_started = time.monotonic()
        waited, refused = served_after(service, threads[-1], max_wait)
        while (
            len(service.events("client.not_reading")) < clients
            and time.monotonic() - all_started < max_wait
        ):
            time.sleep(0.2)
        all_dropped = time.monotonic() - all_started
        dropped = len(service.events("client.not_reading"))
        time.sleep(1.0)
        sampling.set()
        sampler.join()
        after = rss_kib(pid)
        for sock in sockets:
            sock.close()
    fake.stop()
    print(f"source: {source}")
    print(
        f"{clients} non-readers (half SSE, half WebSocket), SEND_TIMEOUT={send_timeout:g} s, "
        f"MAX_CONCURRENT_RUNS={clients}"
    )
    if waited is None:
        print(f"another client's chat: not served within {max_wait:g} s ({refused} refusals)")
    else:
        print(f"another client's chat: served after {waited:.1f} s ({refused} refusals)")
    print(
        f"server RSS: {before / 1024:.1f} MiB before, peak {peak[0] / 1024:.1f} MiB "
        f"(+{(peak[0] - before) / 1024:.1f}), {after / 1024:.1f} MiB after"
    )
    print(
        f"non-readers dropped by the server: {dropped}"
        + (f", all {all_dropped:.1f} s after their runs started" if dropped == clients else "")
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--send-timeout", type=float, default=2.0)
    parser.add_argument("--max-wait", type=float, default=60.0)
    parser.add_argument("--source", type=Path, default=SOURCE)
    arguments = parser.parse_args()
    main(arguments.clients, arguments.send_timeout, arguments.max_wait, arguments.source.resolve())
