"""The ``assistant-service`` command line.

Each command group lives in its own module with an ``add_commands(subparsers)``
function that adds its subcommands and sets ``handler`` (``args -> exit code``);
add a group by listing its module in :data:`COMMAND_MODULES`. The modules import
their extras (Hypercorn, the Google clients) only when a command runs.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from types import ModuleType

from assistant_service.domain.errors import AssistantServiceError
from assistant_service.entrypoints.cli import assistants, serve

COMMAND_MODULES: tuple[ModuleType, ...] = (serve, assistants)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="assistant-service",
        description="A tool-using AI assistant behind HTTP and WebSocket.",
    )
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.add_commands(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command in ``argv`` (default ``sys.argv[1:]``) and return its exit code.

    Configuration errors print one line to stderr and exit with 2; no traceback.
    A reader that stops early (``| head``) ends the command quietly, with 1.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        code: int = handler(args)
        # A closed pipe shows here, where it can be handled, not at interpreter exit.
        sys.stdout.flush()
    except AssistantServiceError as error:
        print(f"assistant-service: {error.message}", file=sys.stderr)  # noqa: T201
        return 2
    except BrokenPipeError:
        _discard_stdout()
        return 1
    except KeyboardInterrupt:
        return 130
    return code


def _discard_stdout() -> None:
    # What is still buffered for the closed pipe would fail again at exit: send it
    # nowhere (the recipe of the signal module's documentation on SIGPIPE).
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
