"""Relay speed: what the service adds on its way to an OpenAI-protocol upstream.

Starts, each in a process of its own (one worker each, all on 127.0.0.1):

- a loopback upstream that answers at once: a raw asyncio HTTP/1.1 server
  that streams a fixed Chat Completions or Responses answer (SSE) to any
  ``POST /v1/chat/completions`` or ``POST /v1/responses``, without parsing the
  body (tests/fakeopenai validates and scripts every request: about 1,200
  req/s at concurrency 16 on the 2-core box, a third of this one, so it would
  measure itself more than the relay);
- the service (``assistant-service serve``) on ``LLM_BACKEND=chat`` and on
  ``LLM_BACKEND=responses`` with ``RESPONSES_STATE=local``, pointed at it.

Then, at concurrency 1, 16 and 64, streamed chat over SSE (``POST /chat`` with
``Accept: text/event-stream``, read to its end; a new thread every 10 turns)
next to direct streamed calls to the same upstream (the request body the
service would send at the same turn). It prints req/s, p50 and p99 for each,
and the latency the service adds (its p50 and p99 less the direct ones).

The client is a minimal keep-alive HTTP/1.1 client on asyncio (no HTTP library),
so that it takes as little of the shared CPU as it can: the machine's cores run
the client, the service and the upstream, so read the figures as a floor.
Blocks of the levels are run ``--rounds`` times, alternating targets, and the
median round is printed.

    python bench/relay.py [--seconds 2] [--rounds 3] [--quick] [--backends chat,local]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

SOURCE = Path(__file__).resolve().parent.parent / "src"
TURNS_PER_THREAD = 10
MODEL = "gpt-relay"
ANSWER_PIECES = ("Hello there, ", "this is a short ", "answer of about ", "a dozen words.")
LEVELS = (1, 16, 64)


# -- the upstream ---------------------------------------------------------------------------


def _sse(events: list[tuple[str | None, object]]) -> bytes:
    out = []
    for name, data in events:
        payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
        out.append((f"event: {name}\n" if name else "") + f"data: {payload}\n\n")
    return "".join(out).encode()


def chat_answer() -> bytes:
    base = {"id": "chatcmpl-relay", "object": "chat.completion.chunk", "created": 0, "model": MODEL}
    events: list[tuple[str | None, object]] = []
    for i, piece in enumerate(ANSWER_PIECES):
        delta = {"role": "assistant", "content": piece} if i == 0 else {"content": piece}
        choice = {"index": 0, "delta": delta, "finish_reason": None}
        events.append((None, {**base, "choices": [choice]}))
    events.append((None, {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}))
    usage = {"prompt_tokens": 20, "completion_tokens": 12, "total_tokens": 32}
    events.append((None, {**base, "choices": [], "usage": usage}))
    events.append((None, "[DONE]"))
    return _sse(events)


def responses_answer() -> bytes:
    text = "".join(ANSWER_PIECES)
    response = {
        "id": "resp_relay",
        "object": "response",
        "created_at": 0,
        "model": MODEL,
        "status": "in_progress",
        "output": [],
    }
    item = {"id": "msg_relay", "type": "message", "role": "assistant", "status": "in_progress"}
    done_item = {
        **item,
        "status": "completed",
        "content": [{"type": "output_text", "text": text, "annotations": []}],
    }
    events: list[tuple[str | None, object]] = [
        (
            "response.created",
            {"type": "response.created", "sequence_number": 0, "response": response},
        ),
        (
            "response.output_item.added",
            {
                "type": "response.output_item.added",
                "sequence_number": 1,
                "output_index": 0,
                "item": {**item, "content": []},
            },
        ),
    ]
    for i, piece in enumerate(ANSWER_PIECES):
        events.append(
            (
                "response.output_text.delta",
                {
                    "type": "response.output_text.delta",
                    "sequence_number": 2 + i,
                    "item_id": "msg_relay",
                    "output_index": 0,
                    "content_index": 0,
                    "delta": piece,
                },
            )
        )
    n = 2 + len(ANSWER_PIECES)
    events.append(
        (
            "response.output_item.done",
            {
                "type": "response.output_item.done",
                "sequence_number": n,
                "output_index": 0,
                "item": done_item,
            },
        )
    )
    completed = {
        **response,
        "status": "completed",
        "output": [done_item],
        "usage": {"input_tokens": 20, "output_tokens": 12, "total_tokens": 32},
    }
    events.append(
        (
            "response.completed",
            {"type": "response.completed", "sequence_number": n + 1, "response": completed},
        )
    )
    return _sse(events)


def _response(body: bytes) -> bytes:
    head = (
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\n"
        f"content-length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


class Upstream(asyncio.Protocol):
    """Keep-alive HTTP/1.1; answers each request with the fixed stream for its path."""

    ANSWERS: dict[bytes, bytes] = {}  # noqa: RUF012 -- filled once, read only
    NOT_FOUND = b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n"

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end]
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if len(self.buffer) < end + 4 + length:
                return
            self.buffer = self.buffer[end + 4 + length :]
            path = head.split(b" ", 2)[1]
            self.transport.write(self.ANSWERS.get(path, self.NOT_FOUND))  # type: ignore[attr-defined]


def run_upstream(port: int) -> None:
    Upstream.ANSWERS = {
        b"/v1/chat/completions": _response(chat_answer()),
        b"/v1/responses": _response(responses_answer()),
    }

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(Upstream, "127.0.0.1", port, backlog=1024)
        async with server:
            await server.serve_forever()

    asyncio.run(serve())


# -- the client -----------------------------------------------------------------------------


class Connection:
    """One keep-alive HTTP/1.1 connection; reads content-length and chunked bodies."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(
        self, method: str, path: str, body: bytes = b"", headers: str = ""
    ) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        reader = self.reader
        if reader is None:
            raise RuntimeError("no connection")
        self.writer.write(
            f"{method} {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: {len(body)}\r\n"
            f"content-type: application/json\r\n{headers}\r\n".encode()
            + body
        )
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        fields = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            fields[name.strip().lower()] = value.strip()
        if "content-length" in fields:
            content = await reader.readexactly(int(fields["content-length"]))
        elif fields.get("transfer-encoding", "").lower() == "chunked":
            parts = []
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                chunk = await reader.readexactly(size + 2)
                if size == 0:
                    break
                parts.append(chunk[:-2])
            content = b"".join(parts)
        else:
            content = await reader.read()
            await self.close()
        if fields.get("connection", "").lower() == "close":
            await self.close()
        return status, content

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


Turn = Callable[[Connection, int, list[str]], Awaitable[float]]
# A worker's turn: its connection, the turn's number in the thread (0 opens one)
# and the worker's state (the thread id, or the history the direct side resends).
# It returns when its timed part began (opening a thread is not timed).


def service_turn() -> Turn:
    async def turn(conn: Connection, number: int, state: list[str]) -> float:
        if number == 0:
            status, body = await conn.request("GET", "/start")
            state[:] = [json.loads(body)["thread_id"]]
        started = time.perf_counter()
        payload = json.dumps({"thread_id": state[0], "message": f"hello there {number}"})
        status, body = await conn.request(
            "POST", "/chat", payload.encode(), "accept: text/event-stream\r\n"
        )
        if status != 200 or b"run.completed" not in body:
            raise RuntimeError(f"chat failed: {status} {body[-300:]!r}")
        return started

    return turn


def direct_turn(backend: str) -> Turn:
    """The request the service would send at this turn of its thread, sent straight upstream."""
    text = "".join(ANSWER_PIECES)
    headers = "authorization: Bearer sk-relay\r\naccept: text/event-stream\r\n"

    async def turn(conn: Connection, number: int, history: list[str]) -> float:
        started = time.perf_counter()
        if number == 0:
            history.clear()
        message = f"hello there {number}"
        if backend == "chat":
            history.append(json.dumps({"role": "user", "content": message}))
            body = (
                f'{{"model":"{MODEL}","messages":[{{"role":"system","content":"Be brief."}},'
                f'{",".join(history)}],"stream":true,"stream_options":{{"include_usage":true}}}}'
            )
            path = "/v1/chat/completions"
        else:
            history.append(
                json.dumps(
                    {
                        "type": "message",
                        "role": "user",
                        "content": [{"type": "input_text", "text": message}],
                    }
                )
            )
            body = (
                f'{{"model":"{MODEL}","input":[{",".join(history)}],"stream":true,'
                f'"store":false,"instructions":"Be brief."}}'
            )
            path = "/v1/responses"
        status, content = await conn.request("POST", path, body.encode(), headers)
        if status != 200:
            raise RuntimeError(f"upstream failed: {status}")
        # Reading the events as a client would.
        for line in content.split(b"\n"):
            if line.startswith(b"data: {"):
                json.loads(line[6:])
        if backend == "chat":
            history.append(json.dumps({"role": "assistant", "content": text}))
        else:
            history.append(
                json.dumps(
                    {
                        "type": "message",
                        "role": "assistant",
                        "content": [{"type": "output_text", "text": text}],
                    }
                )
            )
        return started

    return turn


async def level(
    port: int, turn: Turn, concurrency: int, seconds: float, max_requests: int
) -> tuple[float, float, float, int]:
    latencies: list[float] = []
    errors = 0
    stop_at = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal errors
        conn = Connection(port)
        state: list[str] = []
        number = 0
        try:
            while time.perf_counter() < stop_at and len(latencies) < max_requests:
                started = time.perf_counter()
                try:
                    started = await turn(conn, number, state)
                except (RuntimeError, OSError, asyncio.IncompleteReadError):
                    errors += 1
                    await conn.close()
                latencies.append(time.perf_counter() - started)
                number = (number + 1) % TURNS_PER_THREAD
        finally:
            await conn.close()

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - began
    return len(latencies) / elapsed, percentile(latencies, 0.5), percentile(latencies, 0.99), errors


# -- the service ----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_service(
    port: int, upstream_port: int, backend: str, source: Path = SOURCE
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "PYTHONPATH": str(source),
        "OPENAI_API_KEY": "sk-relay",
        "OPENAI_BASE_URL": f"http://127.0.0.1:{upstream_port}/v1",
        "DEFAULT_MODEL": MODEL,
        "LLM_BACKEND": "chat" if backend == "chat" else "responses",
        "RESPONSES_STATE": "local",
        "LOG_FORMAT": "json",
        "MAX_CONCURRENT_RUNS": "1024",
        "LOGGING_LEVEL": os.environ.get("BENCH_LOGGING_LEVEL", "INFO"),
        "PORT": str(port),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "assistant_service.entrypoints.cli", "serve", "--host", "127.0.0.1"],
        env=env,
        stdout=subprocess.DEVNULL,  # the log lines are formatted (a real cost), then dropped
        stderr=subprocess.PIPE if os.environ.get("BENCH_SERVICE_STDERR") else subprocess.DEVNULL,
    )


async def wait_ready(port: int, path: str = "/healthz") -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        conn = Connection(port)
        try:
            status, _ = await conn.request("POST" if path.startswith("/v1") else "GET", path)
            if status == 200:
                return
        except OSError:
            await asyncio.sleep(0.1)
        finally:
            await conn.close()
    raise RuntimeError("the service did not start")


def start_services(
    arguments: argparse.Namespace, upstream_port: int, backends: list[str]
) -> dict[str, tuple[int, subprocess.Popen[bytes]]]:
    """``service <backend>`` (and ``baseline <backend>`` with ``--baseline``): port and process."""
    sources = {"service": SOURCE}
    if arguments.baseline:
        sources["baseline"] = Path(arguments.baseline).resolve()
    services = {}
    for backend in backends:
        for kind, source in sources.items():
            port = free_port()
            services[f"{kind} {backend}"] = (
                port,
                start_service(port, upstream_port, backend, source),
            )
    return services


async def run(arguments: argparse.Namespace) -> int:
    upstream_port = free_port()
    upstream = multiprocessing.Process(target=run_upstream, args=(upstream_port,), daemon=True)
    upstream.start()
    backends = [b for b in arguments.backends.split(",") if b]
    services = start_services(arguments, upstream_port, backends)
    try:
        await wait_ready(upstream_port, "/v1/responses")
        for port, _ in services.values():
            await wait_ready(port)
        targets: dict[str, tuple[int, Turn]] = {
            f"direct {backend}": (upstream_port, direct_turn(backend))
            for backend in ([] if arguments.service_only else backends)
        }
        for name, (port, _) in services.items():
            targets[name] = (port, service_turn())
        # Warm up every target (connections, imports, caches).
        for port, turn in targets.values():
            await level(port, turn, 4, min(0.5, arguments.seconds), 200)
        results: dict[tuple[str, int], list[tuple[float, float, float, int]]] = {}
        for _ in range(arguments.rounds):
            for concurrency in arguments.levels:
                for name, (port, turn) in targets.items():
                    figures = await level(
                        port, turn, concurrency, arguments.seconds, arguments.max_requests
                    )
                    results.setdefault((name, concurrency), []).append(figures)
        return report(arguments, backends, results)
    finally:
        for _, process in services.values():
            process.terminate()
        for _, process in services.values():
            process.wait(timeout=15)
        upstream.terminate()
        upstream.join(timeout=5)


def median_figures(runs: list[tuple[float, float, float, int]]) -> tuple[float, float, float, int]:
    return (
        statistics.median(r[0] for r in runs),
        statistics.median(r[1] for r in runs),
        statistics.median(r[2] for r in runs),
        sum(r[3] for r in runs),
    )


def report(
    arguments: argparse.Namespace,
    backends: list[str],
    results: dict[tuple[str, int], list[tuple[float, float, float, int]]],
) -> int:
    print(
        f"streamed chat over SSE, {TURNS_PER_THREAD} turns per thread, {arguments.seconds:g} s per "
        f"level, median of {arguments.rounds} rounds"
    )
    print(
        f"{'target':<18} {'conc':>4} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'+p50 ms':>8} {'+p99 ms':>8} {'errors':>6}"
    )
    failed = 0
    for backend in backends:
        for concurrency in arguments.levels:
            if (f"direct {backend}", concurrency) not in results:
                results[(f"direct {backend}", concurrency)] = [(0.0, 0.0, 0.0, 0)]
            direct = median_figures(results[(f"direct {backend}", concurrency)])
            names = [n for (n, c) in results if c == concurrency and n.endswith(f" {backend}")]
            for name in sorted(
                names, key=lambda n: ("direct", "baseline", "service").index(n.split()[0])
            ):
                rps, p50, p99, errors = median_figures(results[(name, concurrency)])
                failed += errors
                added = (
                    f"{(p50 - direct[1]) * 1e3:>8.2f} {(p99 - direct[2]) * 1e3:>8.2f}"
                    if not name.startswith("direct")
                    else f"{'':>8} {'':>8}"
                )
                print(
                    f"{name:<18} {concurrency:>4} {rps:>8.0f} {p50 * 1e3:>8.2f} {p99 * 1e3:>8.2f} "
                    f"{added} {errors:>6}"
                )
    return 1 if failed else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="per level and target")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-requests", type=int, default=100_000)
    parser.add_argument("--levels", default=",".join(map(str, LEVELS)))
    parser.add_argument("--backends", default="chat,local", help="chat and/or local")
    parser.add_argument(
        "--service-only", action="store_true", help="no direct calls (to profile the service)"
    )
    parser.add_argument(
        "--baseline",
        metavar="SRC",
        help="also run the service from this source tree (e.g. an export of main's src/), side by side",
    )
    parser.add_argument("--quick", action="store_true", help="1 s per level, 1 round")
    arguments = parser.parse_args()
    arguments.levels = [int(n) for n in arguments.levels.split(",")]
    if arguments.quick:
        arguments.seconds, arguments.rounds = 1.0, 1
    sys.exit(asyncio.run(run(arguments)))


if __name__ == "__main__":
    main()
