"""The service's composition root: :class:`Services` from :class:`Settings`.

Development (the default) holds the demo assistant in memory and answers with
the offline model unless an API key is set. Production reads assistant
profiles from a Cloud Storage bucket and the API key from Secret Manager
(credentials from Application Default Credentials: ``GOOGLE_APPLICATION_CREDENTIALS``
or the metadata server on Cloud Run). Adapters that need an extra (openai,
google-cloud-*) are imported inside the functions that use them, so the service
starts without the extras it does not use.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, cast
from urllib.parse import unquote, urlsplit

import anyio
import attrs
import structlog

from assistant_service.adapters.config.local import LocalDirectoryConfigRepository
from assistant_service.adapters.config.memory import InMemoryConfigRepository
from assistant_service.adapters.llm.offline import offline_model
from assistant_service.adapters.secrets.memory import InMemorySecretRepository
from assistant_service.adapters.state.memory import InMemoryStateStore
from assistant_service.adapters.tools import FunctionToolRegistry
from assistant_service.application.breaker_model import CircuitBreakerModel
from assistant_service.application.circuit_breaker import CircuitBreaker
from assistant_service.domain.errors import ConfigurationError, NotFoundError
from assistant_service.domain.models import AssistantProfile
from assistant_service.domain.secrets import hold_secret
from assistant_service.entrypoints.bootstrap import (
    DEMO_ASSISTANT_ID,
    bootstrap,
    demo_profile,
    demo_tools,
)
from assistant_service.entrypoints.http.auth import ApiKeys
from assistant_service.entrypoints.http.services import Closer, Services
from assistant_service.entrypoints.observability import observability_from_settings
from assistant_service.entrypoints.remote_assistants import (
    assistants_backend,
    check_default,
    runs_remote_assistant,
)
from assistant_service.entrypoints.settings import (
    LLMBackend,
    ResponsesState,
    Settings,
    StateStoreKind,
)
from assistant_service.ports.config import AssistantConfigRepository
from assistant_service.ports.language_model import LanguageModel
from assistant_service.ports.run_state import StateStore
from assistant_service.ports.secrets import SecretRepository
from assistant_service.ports.tools import ToolRegistry

if TYPE_CHECKING:
    from assistant_service.adapters.config.gcs import GcsConfigRepository
    from assistant_service.adapters.secrets.secret_manager import SecretManagerSecretRepository
    from assistant_service.adapters.state.firestore import FirestoreStateStore
    from assistant_service.adapters.state.redis import RedisStateStore
    from assistant_service.entrypoints.http.throttle import EdgeLimits

log = structlog.get_logger(__name__)


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
        needs_key = settings.backend is not LLMBackend.OFFLINE
        # A real backend needs a real model name: the offline model takes any.
        profiles = [
            demo_profile(registry, model=settings.default_model if needs_key else "offline")
        ]
        if settings.assistants_dir:
            specs, registry = _spec_directories(settings.assistants_dir, registry)
            profiles.extend(specs)
        if settings.config_dir:
            profiles = await _with_stored_profiles(settings.config_dir, profiles, registry)
        configs = InMemoryConfigRepository.of(profiles)
        key = settings.openai_api_key
        values = {settings.openai_api_key_secret: key.reveal()} if key else {}
        secrets = InMemorySecretRepository(values=values)
        default = settings.assistant_id or DEMO_ASSISTANT_ID
        if not runs_remote_assistant(settings):
            await check_default(configs, default)
    api_keys = await _api_keys(settings, secrets)
    state = await _state_store(settings, secrets, closers)
    observability = observability_from_settings(settings, closers)
    limits = edge_limits(settings, api_keys, state)
    # Runs' usage goes to the token budgets as well as to the metrics and traces.
    observer = (
        observability.observer if limits is None else limits.observed_by(observability.observer)
    )
    needs_key = settings.backend is not LLMBackend.OFFLINE
    breaker: CircuitBreaker | None = None
    if needs_key:
        try:
            upstream_model, configs = await _model(
                settings, secrets, state, closers, configs=configs, registry=registry
            )
        except BaseException:
            # Start-up failed (a remote assistant refused, say): close what was opened.
            for close in reversed(closers):
                await close()
            raise
        breaker = CircuitBreaker(
            name="llm",
            failures=settings.breaker_failures,
            cooldown=settings.breaker_cooldown,
            on_change=observability.observer.breaker_changed,
        )
        model: LanguageModel = CircuitBreakerModel(
            upstream_model, breaker, conversations_upstream=_conversations_upstream(settings)
        )
    else:
        model = _offline(settings, state)
    log.info(
        "assistant.default",
        assistant_id=default,
        backend=settings.backend.value,
        hint=None
        if default != DEMO_ASSISTANT_ID or not needs_key
        else f"the demo assistant on {settings.default_model} (DEFAULT_MODEL); "
        "set ASSISTANT_ID to serve your own",
    )
    assistant = bootstrap(
        model=model,
        configs=configs,
        tools=registry,
        default_assistant_id=default,
        state=state,
        lock_ttl=settings.run_lock_ttl,
        events_ttl=settings.run_events_ttl,
        approval_ttl=settings.approval_ttl,
        observer=observer,
    )
    return Services(
        assistant=assistant,
        configs=configs,
        secrets=secrets,
        settings=settings,
        state=state,
        required_secrets=(settings.openai_api_key_secret,) if needs_key else (),
        closers=tuple(closers),
        observability=observability,
        api_keys=api_keys,
        limits=limits,
        tokens=state,
        breaker=breaker,
    )


def _conversations_upstream(settings: Settings) -> bool:
    """Whether the backend's conversations live on the model server (their calls reach it)."""
    if settings.backend is LLMBackend.ASSISTANTS:
        return True
    return (
        settings.backend is LLMBackend.RESPONSES
        and settings.responses_state is ResponsesState.CONVERSATIONS
    )


async def _api_keys(settings: Settings, secrets: SecretRepository) -> ApiKeys | None:
    """The keys of ``API_KEYS``, or of the secret ``API_KEYS_SECRET`` names; ``None`` when neither.

    Raises ``ConfigurationError`` when the secret is missing or its keys are malformed.
    """
    if settings.api_keys is not None:
        raw = settings.api_keys.reveal()
    elif settings.api_keys_secret:
        try:
            raw = (await secrets.get(settings.api_keys_secret)).reveal()
        except NotFoundError:
            raise ConfigurationError(
                f"API_KEYS_SECRET: no secret {settings.api_keys_secret!r}"
            ) from None
    else:
        return None
    keys = ApiKeys.parse(raw)
    log.info("api_keys.loaded", count=len(keys.keys))
    return keys


def edge_limits(
    settings: Settings, api_keys: ApiKeys | None, state: StateStore
) -> EdgeLimits | None:
    """The rate limits and token budgets of ``RATE_LIMIT`` and the keys; ``None`` when none is set.

    They count in the Redis state store's server when there is one (every
    instance shares the count), else in this process's memory (Firestore has
    no ``limits`` storage: each instance then counts on its own).
    Raises ``ConfigurationError`` when the server extra is missing.
    """
    keys = api_keys.keys if api_keys is not None else ()
    rates = {key.id: key.rate_limit for key in keys if key.rate_limit is not None}
    daily = {key.id: key.daily_tokens for key in keys if key.daily_tokens is not None}
    if settings.rate_limit is None and not rates and not daily:
        return None
    try:
        from limits.aio.storage import MemoryStorage, RedisStorage, Storage  # noqa: PLC0415

        from assistant_service.entrypoints.http.budgets import TokenBudgets  # noqa: PLC0415
        from assistant_service.entrypoints.http.client_address import (  # noqa: PLC0415
            parse_networks,
        )
        from assistant_service.entrypoints.http.limiting import (  # noqa: PLC0415
            RequestLimiter,
            parse_rate_limit,
        )
        from assistant_service.entrypoints.http.throttle import EdgeLimits  # noqa: PLC0415
    except ImportError as error:
        raise ConfigurationError(
            f"rate limits and budgets need the server extra: "
            f"pip install 'assistant-service[server]' ({error})"
        ) from None
    storage: Storage
    if settings.state_store is StateStoreKind.REDIS:
        # The store's own connections: same server, credentials and timeouts.
        client = cast("RedisStateStore", state).client
        storage = RedisStorage(
            "async+redis://",
            implementation="redispy",
            key_prefix=f"{settings.redis_key_prefix}limits",
            wrap_exceptions=True,
            # limits types its options as scalars; redis-py takes a pool here.
            connection_pool=client.connection_pool,  # type: ignore[arg-type]
        )
    else:
        storage = MemoryStorage(wrap_exceptions=True)
    default = None if settings.rate_limit is None else parse_rate_limit(settings.rate_limit)
    per_key = {key_id: parse_rate_limit(text) for key_id, text in rates.items()}
    requests = RequestLimiter.on(storage, default, per_key) if default or per_key else None
    budgets = TokenBudgets.on(storage, daily) if daily else None
    trusted = parse_networks(settings.trusted_proxies or "")
    log.info(
        "limits.on",
        rate_limit=settings.rate_limit,
        keys_with_rate_limits=len(per_key),
        keys_with_budgets=len(daily),
        shared=settings.state_store is StateStoreKind.REDIS,
    )
    return EdgeLimits(requests=requests, budgets=budgets, trusted_proxies=trusted)


def hold_url_credentials(url: str) -> None:
    """Mask the password (and user) inside ``url`` wherever text is masked, from now on.

    The URL as a whole is a held :class:`Secret`; a server's error may echo its
    password alone, raw or percent-decoded.
    """
    parts = urlsplit(url)
    for part in (parts.password, parts.username):
        if part:
            hold_secret(part)
            hold_secret(unquote(part))


def _entry_point_tools() -> ToolRegistry:
    registry = FunctionToolRegistry()
    registry.load_entry_points()
    return registry


def _offline(settings: Settings, state: StateStore) -> LanguageModel:
    if settings.llm_backend is None:
        log.warning(
            "llm.offline",
            reason="OPENAI_API_KEY is not set",
            hint="answering with the OFFLINE demo model, not OpenAI: set OPENAI_API_KEY "
            "(or LLM_BACKEND=offline to silence this warning)",
        )
    return offline_model(store=state)


async def _state_store(
    settings: Settings, secrets: SecretRepository, closers: list[Closer]
) -> StateStore:
    """The store of ``STATE_STORE``; a shared one is closed at shutdown.

    Nothing is read from it here: ``/readyz`` tells whether it answers.
    """
    kind = settings.state_store
    if kind is StateStoreKind.MEMORY:
        return InMemoryStateStore()
    store: RedisStateStore | FirestoreStateStore
    try:
        if kind is StateStoreKind.REDIS:
            from assistant_service.adapters.state.redis import RedisStateStore  # noqa: PLC0415

            assert settings.redis_url is not None  # load_settings requires it  # noqa: S101
            hold_url_credentials(settings.redis_url.reveal())
            password = None
            if settings.redis_password_secret:
                password = await secrets.get(settings.redis_password_secret)
            store = RedisStateStore.from_url(
                settings.redis_url.reveal(),
                password=password,
                prefix=settings.redis_key_prefix,
                conversation_ttl=settings.conversation_ttl,
            )
        else:
            from assistant_service.adapters.state.firestore import (  # noqa: PLC0415
                FirestoreStateStore,
            )

            store = FirestoreStateStore.from_environment(
                settings.project_id,
                settings.firestore_database,
                conversation_ttl=settings.conversation_ttl,
            )
    except ImportError as error:
        raise ConfigurationError(
            f"STATE_STORE={kind.value} needs the {kind.value} extra: "
            f"pip install 'assistant-service[{kind.value}]' ({error})"
        ) from None
    closers.append(store.aclose)
    return store


async def _model(  # noqa: PLR0913 -- what the backends need between them
    settings: Settings,
    secrets: SecretRepository,
    state: StateStore,
    closers: list[Closer],
    *,
    configs: AssistantConfigRepository,
    registry: ToolRegistry,
) -> tuple[LanguageModel, AssistantConfigRepository]:
    """The OpenAI-backed model, on one shared client closed at shutdown, and the configs.

    The Assistants backend makes its profiles runnable first (see
    :mod:`~assistant_service.entrypoints.remote_assistants`), which may change ``configs``.

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
        from assistant_service.adapters.llm import openai as openai_models  # noqa: PLC0415
    except ImportError as error:
        raise ConfigurationError(
            f"LLM_BACKEND={settings.backend.value} needs the openai extra: "
            f"pip install 'assistant-service[openai]' ({error})"
        ) from None

    async def current_key() -> str:
        return (await secrets.get(name)).reveal()

    try:
        client = openai_models.make_openai_client(
            api_key=current_key,
            base_url=settings.openai_base_url,
            timeout=settings.openai_timeout,
            max_retries=settings.openai_max_retries,
            transport=settings.openai_transport.value,
        )
    except ValueError as error:  # OPENAI_TRANSPORT=aiohttp without aiohttp installed
        raise ConfigurationError(f"OPENAI_TRANSPORT: {error}") from None
    closers.append(client.close)
    backend = settings.backend
    if backend is LLMBackend.RESPONSES:
        # RESPONSES_STATE=local keeps history here instead of in OpenAI's Conversations.
        local = settings.responses_state is ResponsesState.LOCAL
        responses = openai_models.OpenAIResponsesModel(
            client,
            state=settings.responses_state.value,
            store=state if local else None,
            pending=None if local else state,
        )
        return responses, configs
    if backend is LLMBackend.ASSISTANTS:
        # Threads made by the original service carry no assistant id: ASSISTANT_ID's.
        configs, assistants = await assistants_backend(
            client, settings=settings, configs=configs, registry=registry
        )
        return assistants, configs
    # LLM_BACKEND=chat: compatible servers keep no conversations, the history lives here.
    return openai_models.OpenAIChatModel(client=client, store=state), configs


async def _with_stored_profiles(
    directory: str, profiles: list[AssistantProfile], registry: ToolRegistry
) -> list[AssistantProfile]:
    """``profiles`` with those of ``CONFIG_DIR`` (``assistants push --to local:DIR``).

    A stored profile of a spec directory lends it only its ``remote_id`` (the
    spec is what is being edited); one of no spec directory is served as
    stored, its tools checked against the registry. A missing directory is empty.
    """
    repository = LocalDirectoryConfigRepository(directory)
    if not await anyio.Path(directory).is_dir():
        log.warning("config_dir.missing", config_dir=directory)
        return profiles
    by_id = {p.id: p for p in profiles}
    known = set(_tool_names(registry))
    for stored in await repository.list():
        given = by_id.get(stored.id)
        if given is not None:
            if not given.remote_id and stored.remote_id:
                by_id[stored.id] = attrs.evolve(given, remote_id=stored.remote_id)
            continue
        unknown = [name for name in stored.tools if name not in known]
        if unknown:
            raise ConfigurationError(
                f"{Path(directory) / stored.id}.json: tools: no such tool "
                f"{', '.join(unknown)} (tools are code: put them in ASSISTANTS_DIR)"
            )
        by_id[stored.id] = stored
    return [by_id[key] for key in sorted(by_id)]


def _tool_names(registry: ToolRegistry) -> list[str]:
    return registry.names() if isinstance(registry, FunctionToolRegistry) else []


def _spec_directories(
    root: str, registry: ToolRegistry
) -> tuple[list[AssistantProfile], FunctionToolRegistry]:
    from assistant_service.adapters.config.spec_directory import (  # noqa: PLC0415
        load_spec_directories,
    )

    if not isinstance(registry, FunctionToolRegistry):
        raise ConfigurationError("ASSISTANTS_DIR needs the function tool registry")
    return load_spec_directories(root, registry=registry)


def production_repositories(  # noqa: PLR0913 - the settings it needs, all keyword-only
    *,
    project_id: str,
    bucket_id: str,
    secret_name: str,
    secret_manager_endpoint: str | None = None,
    config_ttl: float,
    secret_ttl: float,
) -> tuple[GcsConfigRepository, SecretManagerSecretRepository]:
    """Profiles in a Cloud Storage bucket and secrets in Secret Manager (the ``gcp`` extra).

    ``secret_name`` is checked here only for presence: :func:`services_from_settings`
    reads it at start-up and in readiness, where a missing secret or a denied
    permission is reported by name. Both repositories have a ``close()`` to call
    on shut-down. Raises ``ConfigurationError`` naming what is missing or wrong.
    """
    missing = [
        name
        for name, value in (
            ("PROJECT_ID", project_id),
            ("BUCKET_ID", bucket_id),
            ("the secret name", secret_name),
        )
        if not value
    ]
    if missing:
        raise ConfigurationError(f"production needs {', '.join(missing)}")
    try:
        from assistant_service.adapters.config.gcs import GcsConfigRepository  # noqa: PLC0415
        from assistant_service.adapters.secrets.secret_manager import (  # noqa: PLC0415
            SecretManagerSecretRepository,
        )
    except ImportError as error:
        raise ConfigurationError(
            "ENVIRONMENT=production needs the gcp extra: "
            f"pip install 'assistant-service[gcp]' ({error})"
        ) from None
    configs = GcsConfigRepository.from_environment(
        bucket_id=bucket_id, project_id=project_id, ttl=config_ttl
    )
    try:
        secrets = SecretManagerSecretRepository.from_environment(
            project_id=project_id, endpoint=secret_manager_endpoint, ttl=secret_ttl
        )
    except BaseException:
        configs.close()
        raise
    return configs, secrets


def _production_repositories(
    settings: Settings, closers: list[Closer]
) -> tuple[AssistantConfigRepository, SecretRepository]:
    configs, secrets = production_repositories(
        project_id=settings.project_id or "",
        bucket_id=settings.bucket_id or "",
        secret_name=settings.openai_api_key_secret,
        secret_manager_endpoint=settings.secret_manager_endpoint,
        config_ttl=settings.config_cache_ttl,
        secret_ttl=settings.secret_cache_ttl,
    )
    # Their clients' close() blocks: run it off the event loop at shutdown.
    closers.extend(partial(anyio.to_thread.run_sync, r.close) for r in (configs, secrets))
    return configs, secrets
