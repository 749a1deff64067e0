"""Run the app under Hypercorn: one process, or several sharing the listening sockets.

On SIGTERM (or SIGINT) the server stops accepting connections, answers
``/readyz`` with 503, closes idle WebSockets and lets runs in flight finish for
up to ``GRACEFUL_TIMEOUT`` seconds. Runs still going then end, each telling its
client (a ``503 shutting_down``, an SSE ``error`` event, or a WebSocket
``error`` event then close 1001); a second later what is still open is aborted.
With ``reload`` (development) a worker process serves, and is replaced, on the
same sockets, whenever a watched file changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import multiprocessing
import signal
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from multiprocessing.synchronize import Event as ProcessEvent
from pathlib import Path
from typing import Any

import structlog
from hypercorn.config import Config, Sockets
from hypercorn.utils import wrap_app
from quart import Quart

from assistant_service.domain.errors import ConfigurationError
from assistant_service.entrypoints.composition import services_from_settings
from assistant_service.entrypoints.event_loop import resolve_loop, run_loop
from assistant_service.entrypoints.heap import settle_heap
from assistant_service.entrypoints.http.app import create_app, edge_state
from assistant_service.entrypoints.logs import configure_logging
from assistant_service.entrypoints.metrics_server import (
    serve_metrics_port,
    shared_metrics_directory,
    worker_ended,
)
from assistant_service.entrypoints.settings import (
    EventLoop,
    Settings,
    SettingsError,
    StateStoreKind,
    load_settings,
)
from assistant_service.entrypoints.worker import serve_connections

log = structlog.get_logger(__name__)

# Hypercorn closes a socket (1009) past this multiple of MAX_WS_MESSAGE_BYTES; up to
# it, the app answers an oversized frame with an error event and keeps the socket.
WS_HARD_LIMIT_FACTOR = 4
_POLL_SECONDS = 0.1
_BACKSTOP_SECONDS = 1.0
# How often --reload looks at the watched files' modification times.
RELOAD_POLL_SECONDS = 0.5

ShutdownTrigger = Callable[[], Awaitable[object]]


def hypercorn_config(settings: Settings, host: str, port: int) -> Config:
    """Hypercorn's config from the settings; its own access log stays off (the app logs)."""
    config = Config()
    config.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    config.accesslog = None
    config.errorlog = logging.getLogger("hypercorn.error")
    # Runs still going at GRACEFUL_TIMEOUT end themselves (see serve) and tell their
    # clients; a moment later the worker aborts what is still open.
    config.graceful_timeout = settings.graceful_timeout + _BACKSTOP_SECONDS
    config.websocket_max_message_size = settings.max_ws_message_bytes * WS_HARD_LIMIT_FACTOR
    config.websocket_ping_interval = settings.ws_ping_interval
    config.include_server_header = False
    return config


async def serve(  # noqa: PLR0913 -- keyword options of one server
    settings: Settings,
    config: Config,
    *,
    sockets: Sockets | None = None,
    shutdown_trigger: ShutdownTrigger | None = None,
    app: Quart | None = None,
    own_process: bool = False,
) -> None:
    """Serve until ``shutdown_trigger`` returns (default: SIGTERM or SIGINT), then drain.

    ``app`` defaults to the app of :func:`services_from_settings`. With
    ``own_process`` (the process does nothing but serve), the garbage collector
    is set for serving once the app is built (see :func:`settle_heap`).
    """
    if app is None:
        app = create_app(await services_from_settings(settings))
    if own_process:
        settle_heap()
    log.info(
        "server.starting",
        loop=_running_loop_name(),
        environment=settings.environment.value,
        backend=settings.backend.value,
        max_concurrent_runs=settings.max_concurrent_runs,
        graceful_timeout=settings.graceful_timeout,
    )
    state = edge_state(app)
    signals = (
        _signals_stop() if shutdown_trigger is None else contextlib.nullcontext(shutdown_trigger)
    )
    end_runs: list[asyncio.TimerHandle] = []
    with signals as trigger:

        async def drain_on_trigger() -> None:
            await trigger()
            log.info("server.draining", graceful_timeout=settings.graceful_timeout)
            state.begin_draining()
            # Past the graceful timeout, runs still going end themselves, each with
            # a shutting_down error for its client; the worker aborts what is
            # still open after the backstop.
            loop = asyncio.get_running_loop()
            end_runs.append(loop.call_later(settings.graceful_timeout, state.end_runs))

        try:
            await serve_connections(
                wrap_app(app, config.wsgi_max_body_size, "asgi"),
                config,
                sockets=sockets if sockets is not None else config.create_sockets(),
                shutdown_trigger=drain_on_trigger,
                state=state,
            )
        finally:
            for handle in end_runs:
                handle.cancel()
    log.info("server.stopped")


def _running_loop_name() -> str:
    loop_type = type(asyncio.get_running_loop())
    return "uvloop" if loop_type.__module__.startswith("uvloop") else "asyncio"


@contextlib.contextmanager
def _signals_stop() -> Iterator[ShutdownTrigger]:
    """SIGTERM and SIGINT end the returned trigger's wait, while the block runs."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    signals = (signal.SIGTERM, signal.SIGINT)
    for signum in signals:
        loop.add_signal_handler(signum, stop.set)
    try:
        yield stop.wait
    finally:
        for signum in signals:
            loop.remove_signal_handler(signum)


def run_server(
    settings: Settings,
    *,
    host: str,
    port: int,
    workers: int = 1,
    reload: Iterable[Path] | None = None,
) -> int:
    """Serve in this process (``workers == 1``) or in ``workers`` spawned processes.

    With ``reload`` (the files and directories to watch) one spawned worker
    serves and is replaced whenever one of them changes. Every worker runs on
    ``settings.event_loop``.
    Raises ``SettingsError`` for several workers on the in-memory state store:
    each process would hold conversations the others cannot see; and
    ``ConfigurationError`` when the address cannot be listened on (a busy port)
    or when uvloop is asked for and not installed.
    """
    if workers > 1 and settings.state_store is StateStoreKind.MEMORY:
        raise SettingsError(
            f"--workers {workers} needs shared state: set STATE_STORE=redis or "
            "STATE_STORE=firestore (STATE_STORE=memory keeps conversations in one process)"
        )
    if reload is not None and workers > 1:
        raise SettingsError("--reload runs one worker: leave --workers out")
    event_loop = resolve_loop(settings.event_loop)
    config = hypercorn_config(settings, host, port)
    sockets = _bind(host, port)
    try:
        with shared_metrics_directory(settings, workers):
            stop_metrics = serve_metrics_port(settings, host)
            try:
                if reload is not None:
                    return _run_workers(config, sockets, 1, watch=_Watcher(reload), loop=event_loop)
                if workers <= 1:
                    run_loop(serve(settings, config, sockets=sockets, own_process=True), event_loop)
                    return 0
                return _run_workers(config, sockets, workers, loop=event_loop)
            finally:
                if stop_metrics is not None:
                    stop_metrics()
    finally:
        for sock in sockets.insecure_sockets:
            sock.close()


def _bind(host: str, port: int) -> Sockets:
    """The listening socket, bound as Hypercorn's ``create_sockets`` binds ``host:port``.

    Bound here so that a failure is one line naming the address (Hypercorn's own
    would raise with its socket left open).
    """
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        if error.errno == errno.EADDRINUSE:
            raise ConfigurationError(
                f"cannot listen on {where}: the port is in use (another server?); "
                "stop it, or pick another port with --port or PORT"
            ) from error
        raise ConfigurationError(
            f"cannot listen on {where}: {error.strerror or error} (check --host and --port)"
        ) from error
    sock.setblocking(False)  # noqa: FBT003 - the socket API takes a flag
    sock.set_inheritable(True)  # the spawned workers serve on it
    return Sockets(secure_sockets=[], insecure_sockets=[sock], quic_sockets=[])


class _Watcher:
    """Says whether any file under the watched paths changed, appeared or went since last asked."""

    def __init__(self, paths: Iterable[Path]) -> None:
        self._paths = tuple(paths)
        self._seen = self._snapshot()

    def changed(self) -> bool:
        now = self._snapshot()
        changed, self._seen = now != self._seen, now
        return changed

    def _snapshot(self) -> dict[Path, float]:
        files: dict[Path, float] = {}
        for root in self._paths:
            candidates = root.rglob("*") if root.is_dir() else (root,)
            for path in candidates:
                if "__pycache__" in path.parts:
                    continue
                with contextlib.suppress(OSError):  # gone meanwhile: the next look sees it
                    if path.is_file():
                        files[path] = path.stat().st_mtime
        return files


def _run_workers(
    config: Config,
    sockets: Sockets,
    workers: int,
    *,
    watch: _Watcher | None = None,
    loop: EventLoop = EventLoop.ASYNCIO,
) -> int:
    # Each worker re-reads the environment: settings hold a Secret, which never pickles.
    context = multiprocessing.get_context("spawn")
    stop = context.Event()
    stopping = threading.Event()  # SIGTERM or SIGINT came, as against a reload

    def request_stop(*_args: Any) -> None:
        stopping.set()
        stop.set()

    while True:
        processes = [
            context.Process(target=_worker, args=(config.bind, sockets, stop, loop), daemon=True)
            for _ in range(workers)
        ]
        # Children inherit "ignore" (a spawned interpreter keeps an ignored SIGINT
        # ignored); the parent decides when they stop.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        for process in processes:
            process.start()
        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)
        reloading = _wait_for(processes, stop, watch)
        if watch is None or stopping.is_set():
            break
        if not reloading:
            # The worker ended by itself (say, a syntax error in a tool): serve again
            # once a file changes, rather than leave a developer with no server.
            log.warning("server.worker_exited", exitcode=processes[0].exitcode)
            while not stopping.is_set() and not watch.changed():
                time.sleep(RELOAD_POLL_SECONDS)
            if stopping.is_set():
                break
        log.info("server.reloading")
        stop.clear()
    return max((process.exitcode or 0) for process in processes)


def _wait_for(
    processes: Sequence[BaseProcess],
    stop: ProcessEvent,
    watch: _Watcher | None,
) -> bool:
    """Wait until every process has ended; True when a watched change ended them."""
    reloading = False
    while alive := [process for process in processes if process.is_alive()]:
        timeout = None if watch is None else RELOAD_POLL_SECONDS
        wait([process.sentinel for process in alive], timeout=timeout)
        if watch is not None and not stop.is_set() and watch.changed():
            reloading = True
            stop.set()
    for process in processes:
        process.join()
        worker_ended(process.pid)
    return reloading


def _worker(bind: list[str], sockets: Sockets, stop: ProcessEvent, loop: EventLoop) -> None:
    settings = load_settings()
    configure_logging(settings)
    host, _, port = bind[0].rpartition(":")
    config = hypercorn_config(settings, host.strip("[]"), int(port))

    async def stopped() -> None:
        # A process-shared event cannot wake an event loop: poll it, cheaply.
        while not stop.is_set():  # noqa: ASYNC110
            await asyncio.sleep(_POLL_SECONDS)

    run_loop(
        serve(settings, config, sockets=sockets, shutdown_trigger=stopped, own_process=True),
        loop,
    )
