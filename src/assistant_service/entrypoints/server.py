"""Run the app under Hypercorn: one process, or several sharing the listening sockets.

On SIGTERM (or SIGINT) the server stops accepting connections, answers
``/readyz`` with 503, closes idle WebSockets and lets runs in flight finish for
up to ``GRACEFUL_TIMEOUT`` seconds; what is still running then is cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import signal
from collections.abc import Awaitable, Callable, Iterator
from multiprocessing.synchronize import Event as ProcessEvent
from typing import Any

import structlog
from hypercorn.asyncio.run import worker_serve
from hypercorn.config import Config, Sockets
from hypercorn.utils import wrap_app
from quart import Quart

from assistant_service.entrypoints.composition import services_from_settings
from assistant_service.entrypoints.http.app import create_app, edge_state
from assistant_service.entrypoints.logs import configure_logging
from assistant_service.entrypoints.metrics_server import (
    serve_metrics_port,
    shared_metrics_directory,
    worker_ended,
)
from assistant_service.entrypoints.settings import (
    Settings,
    SettingsError,
    StateStoreKind,
    load_settings,
)

log = structlog.get_logger(__name__)

# Hypercorn closes a socket (1009) past this multiple of MAX_WS_MESSAGE_BYTES; up to
# it, the app answers an oversized frame with an error event and keeps the socket.
WS_HARD_LIMIT_FACTOR = 4
_POLL_SECONDS = 0.1
_BACKSTOP_SECONDS = 1.0

ShutdownTrigger = Callable[[], Awaitable[object]]


def hypercorn_config(settings: Settings, host: str, port: int) -> Config:
    """Hypercorn's config from the settings; its own access log stays off (the app logs)."""
    config = Config()
    config.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    config.accesslog = None
    config.errorlog = logging.getLogger("hypercorn.error")
    # The app ends what is still open at GRACEFUL_TIMEOUT (see serve); Hypercorn's
    # own cancellation, a moment later, is only the backstop.
    config.graceful_timeout = settings.graceful_timeout + _BACKSTOP_SECONDS
    config.websocket_max_message_size = settings.max_ws_message_bytes * WS_HARD_LIMIT_FACTOR
    config.websocket_ping_interval = settings.ws_ping_interval
    config.include_server_header = False
    return config


async def serve(
    settings: Settings,
    config: Config,
    *,
    sockets: Sockets | None = None,
    shutdown_trigger: ShutdownTrigger | None = None,
    app: Quart | None = None,
) -> None:
    """Serve until ``shutdown_trigger`` returns (default: SIGTERM or SIGINT), then drain.

    ``app`` defaults to the app of :func:`services_from_settings`.
    """
    if app is None:
        app = create_app(await services_from_settings(settings))
    log.info(
        "server.starting",
        environment=settings.environment.value,
        backend=settings.backend.value,
        max_concurrent_runs=settings.max_concurrent_runs,
        graceful_timeout=settings.graceful_timeout,
    )
    state = edge_state(app)
    signals = (
        _signals_stop() if shutdown_trigger is None else contextlib.nullcontext(shutdown_trigger)
    )
    with signals as trigger:

        async def drain_on_trigger() -> None:
            await trigger()
            log.info("server.draining", graceful_timeout=settings.graceful_timeout)
            state.begin_draining()
            # Past the graceful timeout, end what is still open ourselves: on
            # Python 3.12+ Hypercorn would otherwise wait for every client.
            asyncio.get_running_loop().call_later(settings.graceful_timeout, state.stop_now)

        await worker_serve(
            wrap_app(app, config.wsgi_max_body_size, "asgi"),
            config,
            sockets=sockets,
            shutdown_trigger=drain_on_trigger,
        )
    log.info("server.stopped")


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


def run_server(settings: Settings, *, host: str, port: int, workers: int = 1) -> int:
    """Serve in this process (``workers == 1``) or in ``workers`` spawned processes.

    Raises ``SettingsError`` for several workers on the in-memory state store:
    each process would hold conversations the others cannot see.
    """
    if workers > 1 and settings.state_store is StateStoreKind.MEMORY:
        raise SettingsError(
            f"--workers {workers} needs shared state: set STATE_STORE=redis or "
            "STATE_STORE=firestore (STATE_STORE=memory keeps conversations in one process)"
        )
    config = hypercorn_config(settings, host, port)
    with shared_metrics_directory(settings, workers):
        stop_metrics = serve_metrics_port(settings, host)
        try:
            if workers <= 1:
                asyncio.run(serve(settings, config))
                return 0
            return _run_workers(config, workers)
        finally:
            if stop_metrics is not None:
                stop_metrics()


def _run_workers(config: Config, workers: int) -> int:
    # Each worker re-reads the environment: settings hold a Secret, which never pickles.
    sockets = config.create_sockets()
    context = multiprocessing.get_context("spawn")
    stop = context.Event()
    processes = [
        context.Process(target=_worker, args=(config.bind, sockets, stop), daemon=True)
        for _ in range(workers)
    ]

    def request_stop(*_args: Any) -> None:
        stop.set()

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # children inherit "ignore"; the parent decides
    for process in processes:
        process.start()
    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    for process in processes:
        process.join()
        worker_ended(process.pid)
    for sock in sockets.insecure_sockets:
        sock.close()
    return max((process.exitcode or 0) for process in processes)


def _worker(bind: list[str], sockets: Sockets, stop: ProcessEvent) -> None:
    settings = load_settings()
    configure_logging(settings)
    host, _, port = bind[0].rpartition(":")
    config = hypercorn_config(settings, host.strip("[]"), int(port))

    async def stopped() -> None:
        # A process-shared event cannot wake an event loop: poll it, cheaply.
        while not stop.is_set():  # noqa: ASYNC110
            await asyncio.sleep(_POLL_SECONDS)

    asyncio.run(serve(settings, config, sockets=sockets, shutdown_trigger=stopped))
