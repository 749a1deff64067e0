"""The service's composition root: :class:`Services` from :class:`Settings`.

Development (the default) holds the demo assistant in memory and answers with
the offline model unless an API key is set. Production reads assistant
profiles from the bucket and the API key from Secret Manager. Adapters that
need an extra (openai, google-cloud-*) are imported here, inside the functions,
so the service starts without the extras it does not use.
"""

from __future__ import annotations

import importlib
import logging
from functools import partial
from typing import Any

import anyio

from assistant_service.adapters.config.memory import InMemoryConfigRepository
from assistant_service.adapters.conversations.memory import InMemoryConversationStore
from assistant_service.adapters.llm.scripted import offline_model
from assistant_service.adapters.secrets.memory import InMemorySecretRepository
from assistant_service.adapters.tools import FunctionToolRegistry
from assistant_service.domain.errors import ConfigurationError, NotFoundError
from assistant_service.domain.models import AssistantProfile
from assistant_service.entrypoints.bootstrap import bootstrap, demo_profile, demo_tools
from assistant_service.entrypoints.http.services import Closer, Services
from assistant_service.entrypoints.settings import LLMBackend, ResponsesState, Settings
from assistant_service.ports.config import AssistantConfigRepository
from assistant_service.ports.language_model import LanguageModel
from assistant_service.ports.secrets import SecretRepository
from assistant_service.ports.tools import ToolRegistry

log = logging.getLogger(__name__)

DEMO_ASSISTANT_ID = "demo"


async def services_from_settings(
    settings: Settings, *, tools: ToolRegistry | None = None
) -> Services:
    """Build the services ``settings`` describe.

    ``tools`` defaults to the demo tools in development and, in production, to
    every tool module of the ``assistant_service.tools`` entry points (installed
    packages declare theirs). Raises ``ConfigurationError`` when a backend's
    extra is not installed, ``ToolRegistrationError`` for a tool that cannot load.
    """
    closers: list[Closer] = []
    if settings.production:
        registry = tools or _entry_point_tools()
        if settings.assistants_dir and tools is None:
            # Tools ship as code in the image; their profiles come from the bucket.
            _, registry = _spec_directories(settings.assistants_dir, registry)
        configs, secrets = _production_repositories(settings, closers)
        default = settings.assistant_id
    else:
        registry = tools or demo_tools()
        profiles = [demo_profile(registry)]
        if settings.assistants_dir:
            specs, registry = _spec_directories(settings.assistants_dir, registry)
            profiles.extend(specs)
        configs = InMemoryConfigRepository.of(profiles)
        key = settings.openai_api_key
        values = {settings.openai_api_key_secret: key.reveal()} if key else {}
        secrets = InMemorySecretRepository(values=values)
        default = settings.assistant_id or DEMO_ASSISTANT_ID
    needs_key = settings.backend is not LLMBackend.OFFLINE
    model = await _model(settings, secrets, closers) if needs_key else _offline(settings)
    assistant = bootstrap(
        model=model, configs=configs, tools=registry, default_assistant_id=default
    )
    return Services(
        assistant=assistant,
        configs=configs,
        secrets=secrets,
        settings=settings,
        required_secrets=(settings.openai_api_key_secret,) if needs_key else (),
        closers=tuple(closers),
    )


def _entry_point_tools() -> ToolRegistry:
    registry = FunctionToolRegistry()
    registry.load_entry_points()
    return registry


def _offline(settings: Settings) -> LanguageModel:
    if settings.llm_backend is None:
        log.warning(
            "OPENAI_API_KEY is not set: answering with the OFFLINE demo model, not OpenAI. "
            "Set OPENAI_API_KEY (or LLM_BACKEND=offline to silence this warning)."
        )
    return offline_model()


async def _model(
    settings: Settings, secrets: SecretRepository, closers: list[Closer]
) -> LanguageModel:
    """The OpenAI-backed model, on one shared client closed at shutdown.

    The key is read now, so a missing one stops start-up, and again by the SDK
    before each request, through the repository's cache: a rotated secret is
    picked up once its cache expires.
    """
    name = settings.openai_api_key_secret
    try:
        await secrets.get(name)
    except NotFoundError:
        where = "Secret Manager" if settings.production else "OPENAI_API_KEY"
        raise ConfigurationError(
            f"LLM_BACKEND={settings.backend.value} needs an API key: "
            f"set {where} (secret {settings.openai_api_key_secret!r})"
        ) from None
    try:
        openai_support = importlib.import_module("assistant_service.adapters.llm.openai_support")
    except ImportError as error:
        raise ConfigurationError(
            f"LLM_BACKEND={settings.backend.value} needs the openai extra: "
            f"pip install 'assistant-service[openai]' ({error})"
        ) from None

    async def current_key() -> str:
        return (await secrets.get(name)).reveal()

    client = openai_support.make_openai_client(
        api_key=current_key,
        base_url=settings.openai_base_url,
        timeout=settings.openai_timeout,
        max_retries=settings.openai_max_retries,
    )
    closers.append(client.close)
    return _openai_model(settings, client)


def _openai_model(settings: Settings, client: Any) -> LanguageModel:
    # The hook for each OpenAI backend: its module is imported only when chosen.
    backend = settings.backend
    if backend is LLMBackend.RESPONSES:
        responses = importlib.import_module("assistant_service.adapters.llm.openai_responses")
        # RESPONSES_STATE=local keeps history here instead of in OpenAI's Conversations.
        local = settings.responses_state is ResponsesState.LOCAL
        extra = {"store": InMemoryConversationStore()} if local else {}
        model: LanguageModel = responses.OpenAIResponsesModel(
            client, state=settings.responses_state.value, **extra
        )
        return model
    if backend is LLMBackend.ASSISTANTS:
        assistants = importlib.import_module("assistant_service.adapters.llm.openai_assistants")
        # Threads made by the original service carry no assistant id: ASSISTANT_ID's.
        legacy: LanguageModel = assistants.OpenAIAssistantsModel(
            client=client, default_assistant_id=settings.assistant_id
        )
        return legacy
    if backend is LLMBackend.CHAT:
        chat = importlib.import_module("assistant_service.adapters.llm.openai_chat")
        # Compatible servers keep no conversations: the history lives in this process.
        compatible: LanguageModel = chat.OpenAIChatModel(
            client=client, store=InMemoryConversationStore()
        )
        return compatible
    raise ConfigurationError(f"LLM_BACKEND={backend.value} is not available in this build")


def _spec_directories(
    root: str, registry: ToolRegistry
) -> tuple[list[AssistantProfile], FunctionToolRegistry]:
    from assistant_service.adapters.config.spec_directory import (  # noqa: PLC0415
        load_spec_directories,
    )

    if not isinstance(registry, FunctionToolRegistry):
        raise ConfigurationError("ASSISTANTS_DIR needs the function tool registry")
    return load_spec_directories(root, registry=registry)


def _production_repositories(
    settings: Settings, closers: list[Closer]
) -> tuple[AssistantConfigRepository, SecretRepository]:
    """Profiles from the bucket, secrets from Secret Manager (the ``gcp`` extra)."""
    try:
        production = importlib.import_module("assistant_service.entrypoints.production")
    except ImportError as error:
        raise ConfigurationError(
            "ENVIRONMENT=production needs the gcp extra: "
            f"pip install 'assistant-service[gcp]' ({error})"
        ) from None
    configs, secrets = production.production_adapters(
        project_id=settings.project_id or "",
        bucket_id=settings.bucket_id or "",
        secret_name=settings.openai_api_key_secret,
        secret_manager_endpoint=settings.secret_manager_endpoint,
        config_ttl=settings.config_cache_ttl,
        secret_ttl=settings.secret_cache_ttl,
    )
    # Their clients' close() blocks: run it off the event loop at shutdown.
    closers.extend(partial(anyio.to_thread.run_sync, r.close) for r in (configs, secrets))
    typed_configs: AssistantConfigRepository = configs
    typed_secrets: SecretRepository = secrets
    return typed_configs, typed_secrets
