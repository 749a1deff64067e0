"""The ``serve`` command: run the HTTP and WebSocket service under Hypercorn."""

from __future__ import annotations

import argparse
from typing import Any

from assistant_service.entrypoints.logs import configure_logging
from assistant_service.entrypoints.settings import load_settings


def add_commands(subparsers: Any) -> None:
    """Add ``serve`` to the CLI."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "serve",
        help="run the HTTP and WebSocket service",
        description="Run the service under Hypercorn. Settings come from the environment.",
    )
    parser.add_argument("--host", help="interface to listen on (default: HOST or 0.0.0.0)")
    parser.add_argument("--port", type=int, help="port to listen on (default: PORT or 8000)")
    parser.add_argument(
        "--workers", type=int, default=1, help="worker processes (default: 1, as on Cloud Run)"
    )
    parser.set_defaults(handler=_serve)


def _serve(args: argparse.Namespace) -> int:
    settings = load_settings()
    configure_logging(settings)
    # Imported here: the server needs the [server] extra, the other commands do not.
    from assistant_service.entrypoints.server import run_server  # noqa: PLC0415

    return run_server(
        settings,
        host=args.host or settings.host,
        port=settings.port if args.port is None else args.port,
        workers=max(1, args.workers),
    )
