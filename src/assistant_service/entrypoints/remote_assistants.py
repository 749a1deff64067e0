"""Start-up of the Assistants backend: every profile it serves gets a remote assistant.

``ASSISTANT_ID=asst_...`` runs that remote assistant as the server has it (its
model, instructions and tools, each function tool matched to a local one). Else
the profiles without a ``remote_id`` get theirs created or updated now when
``ASSISTANTS_AUTO_PUSH`` is on; when it is off, a default profile without one
stops start-up with the command to run. So ``/start`` never meets a profile
it cannot run, unless one is stored after start-up (then a 502 says what to do).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs
import structlog

from assistant_service.adapters.config.layered import LayeredConfigRepository
from assistant_service.adapters.config.memory import InMemoryConfigRepository
from assistant_service.adapters.tools import FunctionToolRegistry
from assistant_service.domain.errors import ConfigurationError, NotFoundError
from assistant_service.domain.models import AssistantProfile
from assistant_service.entrypoints.bootstrap import DEMO_ASSISTANT_ID
from assistant_service.entrypoints.settings import LLMBackend, Settings
from assistant_service.ports.config import AssistantConfigRepository
from assistant_service.ports.tools import ToolRegistry

if TYPE_CHECKING:
    from openai import AsyncOpenAI

    from assistant_service.adapters.llm.openai.assistants._model import OpenAIAssistantsModel

log = structlog.get_logger(__name__)

REMOTE_PREFIX = "asst_"


def runs_remote_assistant(settings: Settings) -> bool:
    """Whether ``ASSISTANT_ID`` names a remote assistant to run as the server has it."""
    return settings.backend is LLMBackend.ASSISTANTS and (settings.assistant_id or "").startswith(
        REMOTE_PREFIX
    )


async def assistants_backend(
    client: AsyncOpenAI,
    *,
    settings: Settings,
    configs: AssistantConfigRepository,
    registry: ToolRegistry,
) -> tuple[AssistantConfigRepository, OpenAIAssistantsModel]:
    """The Assistants model, and the configs with every served profile runnable.

    Raises ``ConfigurationError`` (one line) for an unknown remote assistant,
    remote tools no local tool matches, or a default profile without a remote
    assistant while auto-push is off.
    """
    from assistant_service.adapters.llm.openai import OpenAIAssistantsModel  # noqa: PLC0415
    from assistant_service.adapters.llm.openai.assistants.remote_assistant import (  # noqa: PLC0415
        push_remote_assistant,
        retrieve_remote_assistant,
    )

    default = settings.assistant_id
    as_configured = {}
    if default and runs_remote_assistant(settings):
        names = registry.names() if isinstance(registry, FunctionToolRegistry) else []
        remote = await retrieve_remote_assistant(client, default, names)
        as_configured[default] = remote.tool_names
        configs = LayeredConfigRepository(InMemoryConfigRepository.of(remote.profile), configs)
        log.info(
            "assistants.remote",
            assistant_id=default,
            model=remote.profile.model,
            tools=list(remote.profile.tools),
        )
    else:
        default = default or DEMO_ASSISTANT_ID
        unpushed = [p for p in await configs.list() if not p.remote_id]
        if settings.auto_push:
            for profile in unpushed:
                specs = registry.specs(profile.tools)
                remote_id = await push_remote_assistant(client, profile, specs)
                await configs.put(attrs.evolve(profile, remote_id=remote_id))
                log.info("assistants.pushed", assistant_id=profile.id, remote_id=remote_id)
        elif unpushed:
            _refuse(settings, unpushed, default)
    model = OpenAIAssistantsModel(
        client=client, default_assistant_id=default, as_configured=as_configured
    )
    return configs, model


def _refuse(settings: Settings, unpushed: list[AssistantProfile], default: str) -> None:
    ids = [p.id for p in unpushed]
    if default not in ids:
        # Served on request only: /start with one of these is a 502 that says what to do.
        log.warning("assistants.not_pushed", assistant_ids=ids)
        return
    if default == DEMO_ASSISTANT_ID:
        fix = "set ASSISTANTS_AUTO_PUSH=true, or ASSISTANT_ID=asst_... to run a remote assistant"
    else:
        target = f"gcs:{settings.bucket_id}" if settings.production else "local:$CONFIG_DIR"
        where = settings.assistants_dir or "assistants"
        fix = (
            f"run: assistant-service assistants push {where}/{default} --backend assistants "
            f"--to {target} (or set ASSISTANTS_AUTO_PUSH=true)"
        )
    raise ConfigurationError(
        f"LLM_BACKEND=assistants: assistant {default!r} has no remote assistant (remote_id); {fix}"
    )


async def check_default(configs: AssistantConfigRepository, assistant_id: str) -> None:
    """Stop start-up when ``ASSISTANT_ID`` names no profile, listing those there are."""
    try:
        await configs.get(assistant_id)
    except NotFoundError:
        known = ", ".join(p.id for p in await configs.list()) or "none"
        raise ConfigurationError(
            f"ASSISTANT_ID={assistant_id}: no such assistant (known: {known}; spec "
            "directories come from ASSISTANTS_DIR, stored profiles from CONFIG_DIR)"
        ) from None
