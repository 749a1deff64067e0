"""Metrics across processes and on a port of their own (``--workers N``, ``METRICS_PORT``).

With several workers every process counts into files under
``PROMETHEUS_MULTIPROC_DIR`` and whichever serves ``/metrics`` adds them up. The
parent makes that directory (a temporary one when the variable is unset) before
it spawns a worker, removes what it made when they are gone, and marks each
worker that ended dead so its live gauges (open sockets, active runs) drop out.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import structlog

from assistant_service.entrypoints.settings import Settings, Switch

log = structlog.get_logger(__name__)

MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"


def _metrics_installed(settings: Settings) -> bool:
    if settings.metrics is Switch.OFF:
        return False
    try:
        import prometheus_client  # noqa: F401, PLC0415 -- is the extra there?
    except ImportError:
        return False
    return True


@contextlib.contextmanager
def shared_metrics_directory(settings: Settings, workers: int) -> Iterator[bool]:
    """Set ``PROMETHEUS_MULTIPROC_DIR`` for the workers to inherit; yields whether it is on.

    Call it in the parent before any worker starts. A directory it made is
    removed at exit; one given is emptied first (figures of an earlier run would
    add up with this one's).
    """
    if workers <= 1 or not _metrics_installed(settings):
        yield False
        return
    given = os.environ.get(MULTIPROC_DIR)
    if given:
        Path(given).mkdir(parents=True, exist_ok=True)
        for stale in Path(given).glob("*.db"):
            stale.unlink()
        directory = given
    else:
        directory = tempfile.mkdtemp(prefix="assistant-service-metrics-")
        os.environ[MULTIPROC_DIR] = directory
    log.info("metrics.multiprocess", directory=directory, workers=workers)
    try:
        yield True
    finally:
        if not given:
            os.environ.pop(MULTIPROC_DIR, None)
            shutil.rmtree(directory, ignore_errors=True)


def worker_ended(pid: int | None) -> None:
    """Drop a worker that ended from the live gauges."""
    if pid is not None and os.environ.get(MULTIPROC_DIR):
        from assistant_service.adapters.observability.prometheus import (  # noqa: PLC0415
            mark_process_dead,
        )

        mark_process_dead(pid)


def serve_metrics_port(settings: Settings, host: str) -> Callable[[], None] | None:
    """Serve the metrics on ``METRICS_PORT`` from a thread; returns what stops it.

    ``None`` when no port is set or metrics are off or not installed. In
    multiprocess mode it serves every worker's figures, added up.
    """
    if settings.metrics_port is None or not _metrics_installed(settings):
        return None
    import prometheus_client as prom  # noqa: PLC0415 -- the extra is optional

    registry = prom.REGISTRY
    if os.environ.get(MULTIPROC_DIR):
        from prometheus_client import multiprocess  # noqa: PLC0415

        registry = prom.CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    server, thread = prom.start_http_server(settings.metrics_port, addr=host, registry=registry)
    log.info("metrics.serving", port=settings.metrics_port)

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

    return stop
