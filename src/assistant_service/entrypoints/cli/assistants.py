"""The ``assistants`` and ``tools`` commands: build, push, list and show assistant profiles.

``assistants build <dir>`` checks a spec directory and prints its profile with
the tool schemas; ``push`` stores it in a config repository (``--to
local:<dir>`` or ``gcs:<bucket>``, default from ``BUCKET_ID`` or
``CONFIG_DIR``); ``list`` and ``show`` read one back; ``tools show
<assistant>`` prints the tool definitions exactly as the model receives them.
Errors print one line naming the file and what to fix, exit code 2.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import anyio
import attrs

from assistant_service.adapters.config.codec import profile_to_dict
from assistant_service.adapters.config.local import LocalDirectoryConfigRepository
from assistant_service.adapters.config.spec_directory import AssistantSpec, load_spec_directory
from assistant_service.adapters.llm.openai._tools import responses_tool
from assistant_service.domain.errors import (
    AssistantServiceError,
    ConfigurationError,
    NotFoundError,
)
from assistant_service.domain.models import AssistantProfile
from assistant_service.entrypoints.bootstrap import DEMO_ASSISTANT_ID, demo_profile, demo_tools
from assistant_service.ports.config import AssistantConfigRepository

Handler = Callable[[argparse.Namespace], int]

# Exit codes: 2 for what the user must fix (spec, settings, unknown id), 1 for the rest.
USAGE_ERRORS = (ConfigurationError, NotFoundError)


def add_commands(subparsers: Any) -> None:
    """Add ``assistants {build,push,list,show}`` and ``tools show`` to the CLI."""
    assistants = subparsers.add_parser("assistants", help="build, push and inspect assistants")
    commands = assistants.add_subparsers(title="commands", metavar="COMMAND", required=True)

    build = commands.add_parser("build", help="check a spec directory and print the result")
    build.add_argument("directory", type=Path, help="spec directory, e.g. assistants/weather")
    build.set_defaults(handler=_handled(_build))

    push = commands.add_parser("push", help="check a spec directory and store its profile")
    push.add_argument("directory", type=Path, help="spec directory, e.g. assistants/weather")
    push.add_argument("--to", dest="target", help=_TARGET_HELP)
    push.add_argument(
        "--backend",
        default=os.environ.get("LLM_BACKEND", ""),
        help="with 'assistants', also create or update the remote assistant (default: LLM_BACKEND)",
    )
    push.set_defaults(handler=_handled(_push))

    listing = commands.add_parser("list", help="list the stored profiles")
    listing.add_argument("--from", dest="target", help=_TARGET_HELP)
    listing.set_defaults(handler=_handled(_list))

    show = commands.add_parser("show", help="print a stored profile as JSON")
    show.add_argument("assistant_id")
    show.add_argument("--from", dest="target", help=_TARGET_HELP)
    show.set_defaults(handler=_handled(_show))

    tools = subparsers.add_parser("tools", help="inspect the tools an assistant exposes")
    tool_commands = tools.add_subparsers(title="commands", metavar="COMMAND", required=True)
    tools_show = tool_commands.add_parser(
        "show", help="print an assistant's tool definitions as the model receives them"
    )
    tools_show.add_argument(
        "assistant", help="the assistant's spec directory name, or demo (the built-in one)"
    )
    tools_show.add_argument(
        "--assistants-dir",
        type=Path,
        default=Path(os.environ.get("ASSISTANTS_DIR") or "assistants"),
        help="where the spec directories are (default: ASSISTANTS_DIR or ./assistants)",
    )
    tools_show.set_defaults(handler=_handled(_tools_show))


_TARGET_HELP = "local:<dir> or gcs:<bucket> (default: gcs:$BUCKET_ID, else local:$CONFIG_DIR)"


def main(argv: Sequence[str] | None = None) -> int:
    """Run these commands alone (tests, ``python -m``); the service CLI mounts them too."""
    parser = argparse.ArgumentParser(prog="assistant-service")
    add_commands(parser.add_subparsers(title="commands", metavar="COMMAND", required=True))
    args = parser.parse_args(argv)
    code: int = args.handler(args)
    return code


def _handled(handler: Handler) -> Handler:
    # Errors the user can act on are one line on stderr, never a traceback.
    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except AssistantServiceError as error:
            print(f"assistant-service: {error.message}", file=sys.stderr)  # noqa: T201
            return 2 if isinstance(error, USAGE_ERRORS) else 1

    return run


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False))  # noqa: T201


def _tools_of(spec: AssistantSpec) -> list[dict[str, Any]]:
    return [responses_tool(s) for s in spec.tools.specs(spec.profile.tools)]


def _build(args: argparse.Namespace) -> int:
    spec = load_spec_directory(args.directory)
    _print_json({"profile": profile_to_dict(spec.profile), "tools": _tools_of(spec)})
    return 0


def _push(args: argparse.Namespace) -> int:
    spec = load_spec_directory(args.directory)
    profile = spec.profile
    with _repository(args.target) as (repository, where):
        if args.backend == "assistants":
            previous = anyio.run(_remote_id, repository, profile.id)
            remote_id = anyio.run(_sync_remote, attrs.evolve(profile, remote_id=previous), spec)
            profile = attrs.evolve(profile, remote_id=remote_id)
        anyio.run(repository.put, profile)
    suffix = f" (remote assistant {profile.remote_id})" if profile.remote_id else ""
    print(f"pushed {profile.id} to {where}{suffix}")  # noqa: T201
    return 0


def _list(args: argparse.Namespace) -> int:
    with _repository(args.target) as (repository, where):
        profiles = anyio.run(repository.list)
    if not profiles:
        # On stderr: stdout stays one line per profile for scripts.
        print(f"no assistant profiles in {where}", file=sys.stderr)  # noqa: T201
    for profile in profiles:
        print(f"{profile.id}\t{profile.model}\t{len(profile.tools)} tools")  # noqa: T201
    return 0


def _show(args: argparse.Namespace) -> int:
    with _repository(args.target) as (repository, _where):
        profile = anyio.run(repository.get, args.assistant_id)
    _print_json(profile_to_dict(profile))
    return 0


def _tools_show(args: argparse.Namespace) -> int:
    directory = args.assistants_dir / args.assistant
    if args.assistant == DEMO_ASSISTANT_ID and not directory.exists():
        # The built-in demo assistant has no spec directory; one named demo wins.
        tools = demo_tools()
        _print_json([responses_tool(s) for s in tools.specs(demo_profile(tools).tools)])
        return 0
    spec = load_spec_directory(directory)
    _print_json(_tools_of(spec))
    return 0


async def _remote_id(repository: AssistantConfigRepository, assistant_id: str) -> str | None:
    try:
        return (await repository.get(assistant_id)).remote_id
    except NotFoundError:
        return None


async def _sync_remote(profile: AssistantProfile, spec: AssistantSpec) -> str:
    import openai  # noqa: PLC0415 - only the Assistants backend needs the extra

    from assistant_service.adapters.llm.openai.assistants.remote_assistant import (  # noqa: PLC0415
        push_remote_assistant,
    )

    # OPENAI_API_KEY and OPENAI_BASE_URL are read by the SDK itself.
    async with openai.AsyncOpenAI(timeout=30.0, max_retries=1) as client:
        return await push_remote_assistant(client, profile, spec.tools.specs(profile.tools))


@contextlib.contextmanager
def _repository(target: str | None) -> Iterator[tuple[AssistantConfigRepository, str]]:
    target = target or _default_target()
    kind, _, place = target.partition(":")
    if kind == "local" and place:
        yield LocalDirectoryConfigRepository(place), target
    elif kind == "gcs" and place:
        from assistant_service.adapters.config.gcs import (  # noqa: PLC0415 - gcp extra
            GcsConfigRepository,
        )

        repository = GcsConfigRepository.from_environment(
            bucket_id=place, project_id=os.environ.get("PROJECT_ID") or None, ttl=0
        )
        try:
            yield repository, target
        finally:
            repository.close()
    else:
        raise ConfigurationError(
            f"invalid config repository {target!r}: use local:<dir> or gcs:<bucket>"
        )


def _default_target() -> str:
    if os.environ.get("BUCKET_ID"):
        return f"gcs:{os.environ['BUCKET_ID']}"
    if os.environ.get("CONFIG_DIR"):
        return f"local:{os.environ['CONFIG_DIR']}"
    raise ConfigurationError(
        "no config repository: pass --to local:<dir> or gcs:<bucket>, or set BUCKET_ID or CONFIG_DIR"
    )


if __name__ == "__main__":
    sys.exit(main())
