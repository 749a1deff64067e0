"""Relay speed: what the service adds on its way to an OpenAI-protocol upstream.

Starts, each in a process of its own (one worker each, all on 127.0.0.1):

- a loopback upstream that answers at once: a raw asyncio HTTP/1.1 server
  that streams a fixed Chat Completions or Responses answer (SSE) to any
  ``POST /v1/chat/completions`` or ``POST /v1/responses``, and opens a
  conversation (a new ``conv_`` id) on ``POST /v1/conversations``, without
  parsing the bodies (tests/fakeopenai validates and scripts every request,
  Conversations API included: about 1,200 req/s at concurrency 16 on the
  2-core box, a third of this one, so it would measure itself more than the
  relay);
- the service (``assistant-service serve``) for each backend asked for:
  ``chat`` (``LLM_BACKEND=chat``), ``local`` (Responses, ``RESPONSES_STATE=local``)
  and ``conversations`` (Responses on the upstream's Conversations API);
- with ``--litellm PATH``, a LiteLLM proxy from the virtualenv at PATH
  (``PATH/bin/litellm``), routing the same model to the same upstream; skipped,
  with a line saying so, when PATH has no LiteLLM.

Then, at concurrency 1, 16 and 64, chat turns (a new thread every 10 turns)
over each transport: ``json`` (``POST /chat``, the answer as one JSON body),
``sse`` (``POST /chat`` with ``Accept: text/event-stream``, read to its end)
and ``ws`` (a frame on ``/stream``, read to ``run.completed``; one socket per
client), next to direct streamed calls to the same upstream (the request
body the service would send at the same turn). It prints req/s, p50 and p99
for each, the latency the service adds (its p50 and p99 less the direct
ones), and the CPU time the serving process spent per request (less noisy
than the clock on a shared machine).

``--crowd N`` instead opens N WebSockets on the ``chat`` service, starts a
conversation on each at once, streams ``--crowd-turns`` turns on every one
concurrently and prints the errors, the turns per second and the latencies.

The HTTP client is a minimal keep-alive HTTP/1.1 client on asyncio (no HTTP
library) and the WebSocket client is ``websockets``, so that the client takes
as little of the shared CPU as it can: the machine's cores run the client,
the service and the upstream, so read the figures as a floor.
Blocks of the levels are run ``--rounds`` times, alternating targets, and the
median round is printed.

    python bench/relay.py [--seconds 2] [--rounds 3] [--quick]
        [--backends chat,local,conversations] [--transports json,sse,ws]
        [--loop auto|asyncio|uvloop] [--baseline SRC] [--litellm VENV]
    python bench/relay.py --crowd 1000 [--crowd-turns 3]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import itertools
import json
import multiprocessing
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from websockets.asyncio.client import ClientConnection, connect

SOURCE = Path(__file__).resolve().parent.parent / "src"
TURNS_PER_THREAD = 10
MODEL = "gpt-relay"
API_KEY = "sk-relay"
ANSWER_PIECES = ("Hello there, ", "this is a short ", "answer of about ", "a dozen words.")
LEVELS = (1, 16, 64)
BACKENDS = ("chat", "local", "conversations")
TRANSPORTS = ("json", "sse", "ws")


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


def _response(body: bytes, content_type: str = "text/event-stream; charset=utf-8") -> bytes:
    head = f"HTTP/1.1 200 OK\r\ncontent-type: {content_type}\r\ncontent-length: {len(body)}\r\n\r\n"
    return head.encode() + body


class Upstream(asyncio.Protocol):
    """Keep-alive HTTP/1.1; answers each request with the fixed stream for its path.

    ``POST /v1/conversations`` gets a new conversation (its own id) each time.
    """

    ANSWERS: dict[bytes, bytes] = {}  # noqa: RUF012 -- filled once, read only
    NOT_FOUND = b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n"
    conversations = itertools.count(1)

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
            self.transport.write(self._answer(path))  # type: ignore[attr-defined]

    def _answer(self, path: bytes) -> bytes:
        if path == b"/v1/conversations":
            conversation = {
                "id": f"conv_relay{next(self.conversations):012d}",
                "object": "conversation",
                "created_at": 0,
                "metadata": {},
            }
            return _response(json.dumps(conversation).encode(), "application/json")
        return self.ANSWERS.get(path, self.NOT_FOUND)


def run_upstream(port: int) -> None:
    Upstream.ANSWERS = {
        b"/v1/chat/completions": _response(chat_answer()),
        b"/v1/responses": _response(responses_answer()),
    }

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(Upstream, "127.0.0.1", port, backlog=4096)
        async with server:
            await server.serve_forever()

    asyncio.run(serve())


# -- the clients ----------------------------------------------------------------------------


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


class Client:
    """One simulated user: an HTTP connection, and a WebSocket opened on first use."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.http = Connection(port)
        self.ws: ClientConnection | None = None
        self.state: list[str] = []  # the thread id, or the history the direct side resends

    async def socket(self) -> ClientConnection:
        if self.ws is None:
            self.ws = await connect(f"ws://127.0.0.1:{self.port}/stream", max_size=None)
        return self.ws

    async def close(self) -> None:
        await self.http.close()
        if self.ws is not None:
            await self.ws.close()
            self.ws = None


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


Turn = Callable[[Client, int], Awaitable[float]]
# A client's turn: the client and the turn's number in the thread (0 opens one).
# It returns when its timed part began (opening a thread is not timed).


def service_turn(transport: str) -> Turn:
    async def turn(client: Client, number: int) -> float:
        if number == 0:
            status, body = await client.http.request("GET", "/start")
            if status != 200:
                raise RuntimeError(f"start failed: {status} {body[-300:]!r}")
            client.state[:] = [json.loads(body)["thread_id"]]
        started = time.perf_counter()
        payload = json.dumps({"thread_id": client.state[0], "message": f"hello there {number}"})
        if transport == "ws":
            socket = await client.socket()
            await socket.send(payload)
            while True:
                event = json.loads(await socket.recv())
                if event["type"] == "run.completed":
                    return started
                if event["type"] == "error":
                    raise RuntimeError(f"chat failed: {event}")
        accept = "accept: text/event-stream\r\n" if transport == "sse" else ""
        status, body = await client.http.request("POST", "/chat", payload.encode(), accept)
        done = b"run.completed" in body if transport == "sse" else b'"responses"' in body
        if status != 200 or not done:
            raise RuntimeError(f"chat failed: {status} {body[-300:]!r}")
        return started

    return turn


def direct_turn(backend: str, auth: str = f"authorization: Bearer {API_KEY}\r\n") -> Turn:
    """The request the service would send at this turn of its thread, sent straight upstream."""
    headers = f"{auth}accept: text/event-stream\r\n"

    async def turn(client: Client, number: int) -> float:
        history = client.state
        if number == 0:
            history.clear()
            if backend == "conversations":  # as GET /start would, untimed
                status, body = await client.http.request("POST", "/v1/conversations", b"{}", auth)
                history.append(json.loads(body)["id"])
        started = time.perf_counter()
        path, body = _direct_request(backend, history, f"hello there {number}")
        status, content = await client.http.request("POST", path, body.encode(), headers)
        if status != 200:
            raise RuntimeError(f"upstream failed: {status} {content[-300:]!r}")
        # Reading the events as a client would.
        for line in content.split(b"\n"):
            if line.startswith(b"data: {"):
                json.loads(line[6:])
        _remember_answer(backend, history)
        return started

    return turn


def _direct_request(backend: str, history: list[str], message: str) -> tuple[str, str]:
    """The path and body the service sends upstream for ``message`` after ``history``."""
    if backend == "chat":
        history.append(json.dumps({"role": "user", "content": message}))
        body = (
            f'{{"model":"{MODEL}","messages":[{{"role":"system","content":"Be brief."}},'
            f'{",".join(history)}],"stream":true,"stream_options":{{"include_usage":true}}}}'
        )
        return "/v1/chat/completions", body
    user = json.dumps(
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": message}]}
    )
    if backend == "conversations":  # the server keeps the history: only the new item goes
        body = (
            f'{{"model":"{MODEL}","input":[{user}],"stream":true,'
            f'"conversation":"{history[0]}","instructions":"Be brief."}}'
        )
        return "/v1/responses", body
    history.append(user)
    body = (
        f'{{"model":"{MODEL}","input":[{",".join(history)}],"stream":true,'
        f'"store":false,"instructions":"Be brief."}}'
    )
    return "/v1/responses", body


def _remember_answer(backend: str, history: list[str]) -> None:
    text = "".join(ANSWER_PIECES)
    if backend == "chat":
        history.append(json.dumps({"role": "assistant", "content": text}))
    elif backend == "local":
        content = [{"type": "output_text", "text": text}]
        history.append(json.dumps({"type": "message", "role": "assistant", "content": content}))


Figures = tuple[float, float, float, int, float]
# req/s, p50 s, p99 s, errors, CPU s per request of the serving process


def cpu_seconds(pid: int | None) -> float:
    """User and system CPU time of ``pid`` so far (0 without one)."""
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def level(target: Target, concurrency: int, seconds: float, max_requests: int) -> Figures:
    latencies: list[float] = []
    errors = 0
    stop_at = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal errors
        client = Client(target.port)
        number = 0
        try:
            while time.perf_counter() < stop_at and len(latencies) < max_requests:
                started = time.perf_counter()
                try:
                    started = await target.turn(client, number)
                except (RuntimeError, OSError, asyncio.IncompleteReadError, ValueError) as error:
                    errors += 1
                    if errors <= 3:
                        print(f"  {target.name}: {str(error)[:200]}", file=sys.stderr)
                    await client.close()
                latencies.append(time.perf_counter() - started)
                number = (number + 1) % TURNS_PER_THREAD
        finally:
            await client.close()

    cpu_before = cpu_seconds(target.pid)
    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - began
    cpu = (cpu_seconds(target.pid) - cpu_before) / max(1, len(latencies))
    return (
        len(latencies) / elapsed,
        percentile(latencies, 0.5),
        percentile(latencies, 0.99),
        errors,
        cpu,
    )


# -- the servers ----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Target:
    """Something to send turns to: its name, port, turn and the process whose CPU is counted."""

    name: str
    backend: str
    transport: str
    port: int
    turn: Turn
    pid: int | None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_service(
    port: int, upstream_port: int, backend: str, loop: str, source: Path = SOURCE
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "PYTHONPATH": str(source),
        "OPENAI_API_KEY": API_KEY,
        "OPENAI_BASE_URL": f"http://127.0.0.1:{upstream_port}/v1",
        "DEFAULT_MODEL": MODEL,
        "LLM_BACKEND": "chat" if backend == "chat" else "responses",
        "RESPONSES_STATE": "conversations" if backend == "conversations" else "local",
        "LOG_FORMAT": "json",
        "MAX_CONCURRENT_RUNS": "2048",
        "LOGGING_LEVEL": os.environ.get("BENCH_LOGGING_LEVEL", "INFO"),
        # A variable, not --loop: a --baseline source tree from before the option ignores it.
        "EVENT_LOOP": loop,
        "PORT": str(port),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "assistant_service.entrypoints.cli", "serve", "--host", "127.0.0.1"],
        env=env,
        stdout=subprocess.DEVNULL,  # the log lines are formatted (a real cost), then dropped
        stderr=subprocess.PIPE if os.environ.get("BENCH_SERVICE_STDERR") else subprocess.DEVNULL,
    )


LITELLM_CONFIG = """\
model_list:
  - model_name: {model}
    litellm_params:
      model: openai/{model}
      api_base: http://127.0.0.1:{upstream_port}/v1
      api_key: {api_key}
general_settings:
  master_key: sk-litellm-relay
"""


def start_litellm(
    venv: Path, port: int, upstream_port: int, workdir: Path
) -> subprocess.Popen[bytes] | None:
    """A LiteLLM proxy from the virtualenv ``venv`` routing MODEL to the upstream; None without one."""
    executable = venv / "bin" / "litellm"
    if not executable.exists():
        print(f"LiteLLM: {executable} does not exist; its rows are left out", file=sys.stderr)
        return None
    config = workdir / "litellm.yaml"
    config.write_text(
        LITELLM_CONFIG.format(model=MODEL, upstream_port=upstream_port, api_key=API_KEY)
    )
    return subprocess.Popen(  # noqa: S603 -- the LiteLLM the user pointed at
        [str(executable), "--config", str(config), "--host", "127.0.0.1", "--port", str(port)],
        env={**os.environ, "LITELLM_LOG": "ERROR"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def wait_ready(port: int, path: str = "/healthz", deadline_seconds: float = 30) -> None:
    deadline = time.monotonic() + deadline_seconds
    while time.monotonic() < deadline:
        conn = Connection(port)
        try:
            status, _ = await conn.request("POST" if path.startswith("/v1") else "GET", path)
            if status == 200:
                return
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            await conn.close()
        await asyncio.sleep(0.1)
    raise RuntimeError(f"the server on port {port} did not start")


def start_services(
    arguments: argparse.Namespace, upstream_port: int
) -> dict[str, tuple[int, subprocess.Popen[bytes]]]:
    """``service <backend>`` (and ``baseline <backend>`` with ``--baseline``): port and process."""
    sources = {"service": SOURCE}
    if arguments.baseline:
        sources["baseline"] = Path(arguments.baseline).resolve()
    services = {}
    for backend in arguments.backends:
        for kind, source in sources.items():
            port = free_port()
            process = start_service(port, upstream_port, backend, arguments.loop, source)
            services[f"{kind} {backend}"] = (port, process)
    return services


def targets_for(
    arguments: argparse.Namespace,
    upstream: tuple[int, int | None],
    services: dict[str, tuple[int, subprocess.Popen[bytes]]],
    litellm: tuple[int, int] | None,
) -> list[Target]:
    targets = []
    for backend in arguments.backends:
        if not arguments.service_only:
            turn = direct_turn(backend)
            targets.append(Target("direct", backend, "sse", upstream[0], turn, upstream[1]))
        if litellm is not None and backend == "chat":
            auth = "authorization: Bearer sk-litellm-relay\r\n"
            turn = direct_turn("chat", auth)
            targets.append(Target("litellm", backend, "sse", litellm[0], turn, litellm[1]))
        for transport in arguments.transports:
            for kind in ("baseline", "service"):
                if f"{kind} {backend}" in services:
                    port, process = services[f"{kind} {backend}"]
                    turn = service_turn(transport)
                    target = Target(kind, backend, transport, port, turn, process.pid)
                    targets.append(target)
    return targets


async def run(arguments: argparse.Namespace) -> int:
    upstream_port = free_port()
    upstream = multiprocessing.Process(target=run_upstream, args=(upstream_port,), daemon=True)
    upstream.start()
    services = start_services(arguments, upstream_port)
    litellm_process = None
    with tempfile.TemporaryDirectory() as workdir:
        try:
            litellm = None
            if arguments.litellm and "chat" in arguments.backends:
                litellm_port = free_port()
                litellm_process = start_litellm(
                    Path(arguments.litellm), litellm_port, upstream_port, Path(workdir)
                )
                litellm = await _litellm_ready(litellm_port, litellm_process)
            await wait_ready(upstream_port, "/v1/responses")
            for port, _ in services.values():
                await wait_ready(port)
            if arguments.crowd:
                port, process = services["service chat"]
                return await crowd(arguments, port, process.pid)
            targets = targets_for(arguments, (upstream_port, upstream.pid), services, litellm)
            # Warm up every target (connections, imports, caches).
            for target in targets:
                await level(target, 4, min(0.5, arguments.seconds), 200)
            results: dict[tuple[int, int], list[Figures]] = {}
            for _ in range(arguments.rounds):
                for concurrency in arguments.levels:
                    for index, target in enumerate(targets):
                        figures = await level(
                            target, concurrency, arguments.seconds, arguments.max_requests
                        )
                        results.setdefault((index, concurrency), []).append(figures)
            return report(arguments, targets, results)
        finally:
            processes = [p for _, p in services.values()]
            processes += [litellm_process] if litellm_process is not None else []
            for process in processes:
                process.terminate()
            for process in processes:
                process.wait(timeout=15)
            upstream.terminate()
            upstream.join(timeout=5)


async def _litellm_ready(
    port: int, process: subprocess.Popen[bytes] | None
) -> tuple[int, int] | None:
    if process is None:
        return None
    await wait_ready(port, "/health/liveliness", 120)
    return port, process.pid


def median_figures(runs: list[Figures]) -> Figures:
    return (
        statistics.median(r[0] for r in runs),
        statistics.median(r[1] for r in runs),
        statistics.median(r[2] for r in runs),
        sum(r[3] for r in runs),
        statistics.median(r[4] for r in runs),
    )


def report(
    arguments: argparse.Namespace,
    targets: list[Target],
    results: dict[tuple[int, int], list[Figures]],
) -> int:
    print(
        f"chat turns, {TURNS_PER_THREAD} per thread, {arguments.seconds:g} s per level, median "
        f"of {arguments.rounds} rounds; service loop: {arguments.loop}; 'cpu' is the serving "
        "process's CPU time per request (the upstream's for direct)"
    )
    print(
        f"{'backend':<14} {'target':<9} {'via':<4} {'conc':>4} {'req/s':>7} {'p50 ms':>8} "
        f"{'p99 ms':>8} {'+p50 ms':>8} {'+p99 ms':>8} {'cpu ms':>7} {'errors':>6}"
    )
    failed = 0
    for backend in arguments.backends:
        for concurrency in arguments.levels:
            direct: Figures | None = None
            for index, target in enumerate(targets):
                if target.backend != backend:
                    continue
                rps, p50, p99, errors, cpu = median_figures(results[(index, concurrency)])
                failed += errors
                if target.name == "direct":
                    direct = (rps, p50, p99, errors, cpu)
                added = (
                    f"{(p50 - direct[1]) * 1e3:>8.2f} {(p99 - direct[2]) * 1e3:>8.2f}"
                    if direct is not None and target.name != "direct"
                    else f"{'':>8} {'':>8}"
                )
                print(
                    f"{backend:<14} {target.name:<9} {target.transport:<4} {concurrency:>4} "
                    f"{rps:>7.0f} {p50 * 1e3:>8.2f} {p99 * 1e3:>8.2f} {added} {cpu * 1e3:>7.2f} "
                    f"{errors:>6}"
                )
    return 1 if failed else 0


# -- a crowd of WebSockets ------------------------------------------------------------------


@dataclasses.dataclass
class Crowd:
    """What the sockets of ``--crowd`` share: how many are open, errors and turn latencies."""

    count: int
    turns: int
    port: int
    errors: list[str] = dataclasses.field(default_factory=list)
    latencies: list[float] = dataclasses.field(default_factory=list)
    opened: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    ready: int = 0

    def one_more_ready(self) -> None:
        self.ready += 1
        if self.ready == self.count:
            self.opened.set()

    async def conversation(self) -> None:
        """Open a thread and its socket, wait for every other one, then stream the turns."""
        client = Client(self.port)
        try:
            status, body = await client.http.request("GET", "/start")
            thread_id = json.loads(body)["thread_id"] if status == 200 else None
            socket = await client.socket()
        except (OSError, ValueError, asyncio.IncompleteReadError) as error:
            self.errors.append(f"open: {type(error).__name__}: {error}")
            thread_id = None
        self.one_more_ready()
        try:
            if thread_id is None:
                self.errors.append("open: no thread")
                return
            await self.opened.wait()  # every socket open before any turn starts
            for number in range(self.turns):
                await self.turn(socket, thread_id, number)
        except (OSError, ValueError, RuntimeError) as error:
            self.errors.append(f"{type(error).__name__}: {error}")
        finally:
            await client.close()

    async def turn(self, socket: ClientConnection, thread_id: str, number: int) -> None:
        started = time.perf_counter()
        await socket.send(json.dumps({"thread_id": thread_id, "message": f"hi {number}"}))
        while True:
            event = json.loads(await socket.recv())
            if event["type"] == "error":
                self.errors.append(f"{event.get('code')}: {event.get('message')}")
                return
            if event["type"] == "run.completed":
                self.latencies.append(time.perf_counter() - started)
                return


async def crowd(arguments: argparse.Namespace, port: int, pid: int) -> int:
    """``--crowd N`` conversations on N sockets, all streaming at once, ``--crowd-turns`` turns each."""
    crowd = Crowd(arguments.crowd, arguments.crowd_turns, port)
    tasks = [asyncio.ensure_future(crowd.conversation()) for _ in range(crowd.count)]
    await crowd.opened.wait()
    cpu_before = cpu_seconds(pid)
    began = time.perf_counter()
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - began
    cpu = cpu_seconds(pid) - cpu_before
    done = crowd.latencies
    print(
        f"{crowd.count} WebSockets on the chat backend (loop {arguments.loop}), {crowd.turns} "
        f"turns each, all streaming at once: {len(done)} turns in {elapsed:.2f} s, "
        f"{len(done) / elapsed:.0f} turns/s"
    )
    if done:
        print(
            f"turn latency p50 {percentile(done, 0.5) * 1e3:.1f} ms, "
            f"p99 {percentile(done, 0.99) * 1e3:.1f} ms; service CPU "
            f"{cpu * 1e3 / len(done):.2f} ms per turn"
        )
    print(f"errors: {len(crowd.errors)}")
    for error in sorted(set(crowd.errors))[:10]:
        print(f"  {crowd.errors.count(error)} x {error[:200]}")
    return 1 if crowd.errors else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="per level and target")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-requests", type=int, default=100_000)
    parser.add_argument("--levels", default=",".join(map(str, LEVELS)))
    parser.add_argument("--backends", default=",".join(BACKENDS), help=", ".join(BACKENDS))
    parser.add_argument("--transports", default=",".join(TRANSPORTS), help=", ".join(TRANSPORTS))
    parser.add_argument(
        "--loop",
        choices=("auto", "asyncio", "uvloop"),
        default="auto",
        help="the service's event loop (EVENT_LOOP)",
    )
    parser.add_argument(
        "--service-only", action="store_true", help="no direct calls (to profile the service)"
    )
    parser.add_argument(
        "--baseline",
        metavar="SRC",
        help="also run the service from this source tree (e.g. an export of main's src/), side by side",
    )
    parser.add_argument(
        "--litellm",
        metavar="VENV",
        help="also relay through a LiteLLM proxy from this virtualenv (VENV/bin/litellm)",
    )
    parser.add_argument(
        "--crowd",
        type=int,
        metavar="N",
        help="instead: N WebSockets on the chat backend, every one streaming at once",
    )
    parser.add_argument("--crowd-turns", type=int, default=3, help="turns per --crowd socket")
    parser.add_argument("--quick", action="store_true", help="1 s per level, 1 round")
    arguments = parser.parse_args()
    arguments.levels = [int(n) for n in arguments.levels.split(",")]
    arguments.backends = [b for b in arguments.backends.split(",") if b]
    arguments.transports = [t for t in arguments.transports.split(",") if t]
    for name, value, known in (
        ("backend", arguments.backends, BACKENDS),
        ("transport", arguments.transports, TRANSPORTS),
    ):
        unknown = set(value) - set(known)
        if unknown:
            parser.error(f"unknown {name}: {', '.join(sorted(unknown))}")
    if arguments.crowd:
        arguments.backends = ["chat"]
    if arguments.quick:
        arguments.seconds, arguments.rounds = 1.0, 1
    sys.exit(asyncio.run(run(arguments)))


if __name__ == "__main__":
    main()
