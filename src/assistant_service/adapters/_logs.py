"""The adapters' loggers: structlog events through stdlib ``logging``.

An application that embeds the package and configures no logging gets no log
output from it (structlog's own default would print every event to stdout); one
that configures ``logging``, or the service (``entrypoints.logs``), gets the
events with their fields.
"""

from __future__ import annotations

import logging
from typing import Any

import structlog


def get_logger(name: str) -> Any:
    """A structlog logger writing to the stdlib logger ``name``, whatever structlog's configuration."""
    return structlog.wrap_logger(logging.getLogger(name))
