"""The ``serve`` command: run the HTTP and WebSocket service under Hypercorn."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

import attrs

import assistant_service
from assistant_service.domain.errors import ConfigurationError
from assistant_service.entrypoints.logs import configure_logging
from assistant_service.entrypoints.settings import EventLoop, Settings, load_settings

# The modules of the [server] extra; any other missing module is a bug, not a user error.
_SERVER_EXTRA = frozenset({"hypercorn", "quart", "werkzeug", "h11", "h2", "wsproto"})


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
    parser.add_argument(
        "--reload",
        action="store_true",
        help="development: restart when the package, ASSISTANTS_DIR or CONFIG_DIR change",
    )
    parser.add_argument(
        "--loop",
        choices=[loop.value for loop in EventLoop],
        help="event loop: uvloop when installed (auto), or asyncio (default: EVENT_LOOP or auto)",
    )
    parser.set_defaults(handler=_serve)


def _serve(args: argparse.Namespace) -> int:
    settings = load_settings()
    try:
        # Imported here: the server needs the [server] extra, the other commands do not.
        from assistant_service.entrypoints.server import run_server  # noqa: PLC0415
    except ModuleNotFoundError as error:
        if (error.name or "").partition(".")[0] not in _SERVER_EXTRA:
            raise
        raise ConfigurationError(
            f"serve needs the server extra ({error.name} is not installed): "
            "pip install 'assistant-service[server]'"
        ) from error
    if args.loop is not None:
        settings = attrs.evolve(settings, event_loop=EventLoop(args.loop))
    configure_logging(settings)
    return run_server(
        settings,
        host=args.host or settings.host,
        port=settings.port if args.port is None else args.port,
        workers=max(1, args.workers),
        reload=_watched(settings) if args.reload else None,
    )


def _watched(settings: Settings) -> list[Path]:
    """The code and specs a development server runs: the package, spec and config directories."""
    paths = [Path(assistant_service.__file__).parent]
    paths += [Path(d) for d in (settings.assistants_dir, os.environ.get("CONFIG_DIR")) if d]
    return paths
