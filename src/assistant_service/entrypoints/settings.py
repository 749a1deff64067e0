"""Service settings, structured from environment variables with cattrs.

Each field is read from the variable of the same name in upper case
(``max_body_bytes`` from ``MAX_BODY_BYTES``); an empty variable counts as unset.
:func:`load_settings` raises one :class:`SettingsError` that names every bad
or missing variable, so a deployment is fixed in one round.
"""

from __future__ import annotations

import enum
import math
import os
from collections.abc import Callable, Mapping
from typing import Any

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, override

from assistant_service.domain.errors import ConfigurationError
from assistant_service.domain.secrets import Secret
from assistant_service.entrypoints.http.client_address import parse_networks
from assistant_service.entrypoints.http.cors import ANY, parse_origins

OPENAI_API_KEY_NAME = "openai-api-key"


class SettingsError(ConfigurationError):
    """The environment does not describe a service that can start; the message says why."""

    code = "invalid_settings"


class Environment(str, enum.Enum):
    DEVELOPMENT = "development"
    PRODUCTION = "production"


class LogFormat(str, enum.Enum):
    JSON = "json"
    KEYVALUE = "keyvalue"


class LogStream(str, enum.Enum):
    STDOUT = "stdout"
    STDERR = "stderr"


class LogLevel(str, enum.Enum):
    DEBUG = "DEBUG"
    INFO = "INFO"
    WARNING = "WARNING"
    ERROR = "ERROR"
    CRITICAL = "CRITICAL"


class LLMBackend(str, enum.Enum):
    RESPONSES = "responses"
    ASSISTANTS = "assistants"
    CHAT = "chat"
    OFFLINE = "offline"


class ResponsesState(str, enum.Enum):
    CONVERSATIONS = "conversations"
    LOCAL = "local"


class Switch(str, enum.Enum):
    ON = "on"
    OFF = "off"


class EventLoop(str, enum.Enum):
    """The server's event loop; ``auto``: uvloop when it is installed, else asyncio."""

    AUTO = "auto"
    ASYNCIO = "asyncio"
    UVLOOP = "uvloop"


class OpenAITransport(str, enum.Enum):
    """How the SDK's client talks HTTP; ``auto``: aiohttp when it is installed, else httpx."""

    AUTO = "auto"
    HTTPX = "httpx"
    AIOHTTP = "aiohttp"


class StateStoreKind(str, enum.Enum):
    MEMORY = "memory"
    REDIS = "redis"
    FIRESTORE = "firestore"


THIRTY_DAYS = 30 * 24 * 3600.0
# The demo assistant's model on a real backend: a current, inexpensive OpenAI model.
DEFAULT_MODEL = "gpt-4.1-mini"


@attrs.frozen
class Settings:
    """Everything the service reads from its environment; see the README for each variable.

    ``llm_backend`` unset means: ``responses`` when an API key is configured
    (or in production, where it comes from Secret Manager), else ``offline``.
    """

    environment: Environment = Environment.DEVELOPMENT
    # Development reads the key from here; production from Secret Manager.
    openai_api_key: Secret | None = None
    openai_api_key_secret: str = OPENAI_API_KEY_NAME
    openai_base_url: str | None = None
    openai_timeout: float = 60.0
    openai_max_retries: int = 2
    # aiohttp (the openai extra installs it) or httpx2's own transport under the SDK.
    openai_transport: OpenAITransport = OpenAITransport.AUTO
    # The circuit breaker on the model server: this many faults in a row (5xx,
    # timeouts, lost connections) open it, and calls fail fast this many seconds.
    breaker_failures: int = 5
    breaker_cooldown: float = 30.0
    llm_backend: LLMBackend | None = None
    # The model of the demo assistant on a real backend (the offline model otherwise).
    default_model: str = DEFAULT_MODEL
    responses_state: ResponsesState = ResponsesState.CONVERSATIONS
    # Where state that outlives a request lives: history, run leases, pending calls.
    state_store: StateStoreKind = StateStoreKind.MEMORY
    # A URL may hold a password: a Secret, never shown.
    redis_url: Secret | None = None
    # The name of a secret (Secret Manager in production) holding the Redis password.
    redis_password_secret: str | None = None
    redis_key_prefix: str = "assistant-service:"
    firestore_database: str = "(default)"
    conversation_ttl: float = THIRTY_DAYS
    run_lock_ttl: float = 30.0
    # How long a run's events and record are kept after it ended (for resuming).
    run_events_ttl: float = 600.0
    # How long a run stopped for approvals waits for a decision.
    approval_ttl: float = 24 * 3600.0
    project_id: str | None = None
    bucket_id: str | None = None
    assistant_id: str | None = None
    # Spec directories (assistants/<id>/profile.json + tools.py) whose tools the service loads.
    assistants_dir: str | None = None
    # Profiles as JSON files (``assistants push --to local:DIR``); read in development.
    config_dir: str | None = None
    # LLM_BACKEND=assistants: create or update remote assistants at start-up (None: in
    # development only).
    assistants_auto_push: bool | None = None
    google_application_credentials: str | None = None
    secret_manager_endpoint: str | None = None
    storage_emulator_host: str | None = None
    config_cache_ttl: float = 60.0
    secret_cache_ttl: float = 300.0
    logging_level: LogLevel = LogLevel.INFO
    stream: LogStream = LogStream.STDOUT
    log_format: LogFormat = LogFormat.JSON
    # Containers must listen on every interface; the CLI's --host overrides it.
    host: str = "0.0.0.0"  # noqa: S104
    port: int = 8000
    max_body_bytes: int = 1_048_576
    max_message_length: int = 32_000
    max_ws_message_bytes: int = 262_144
    max_concurrent_runs: int = 64
    # The server's event loop: uvloop when installed (auto), or asyncio; the CLI's --loop overrides it.
    event_loop: EventLoop = EventLoop.AUTO
    # Cloud Run kills 10 s after SIGTERM: leave time to close after the runs end.
    graceful_timeout: float = 8.0
    ws_ping_interval: float = 20.0
    ws_idle_timeout: float = 300.0
    # A client that takes nothing of its response, event stream or socket for this
    # long is disconnected (its run ends as when a client leaves).
    send_timeout: float = 30.0
    # Prometheus metrics (when prometheus-client is installed): on /metrics, or
    # on a port of their own with METRICS_PORT. Traces are configured by OTEL_*.
    metrics: Switch = Switch.ON
    metrics_port: int | None = None
    # The playground page at / (None: on in development, off in production).
    playground: Switch | None = None
    # API keys as JSON (development), or the name of the secret that holds them
    # (Secret Manager in production): when either is set, requests need a key.
    api_keys: Secret | None = None
    api_keys_secret: str | None = None
    # Requests per caller (the API key, or the client's address when keys are off),
    # like "60/minute"; a key's own rate_limit overrides it. None: no limit.
    rate_limit: str | None = None
    # Proxies whose X-Forwarded-For is believed: addresses and CIDR blocks, comma-separated.
    trusted_proxies: str | None = None
    # Web origins whose pages may call the API from a browser (comma-separated), or "*".
    cors_origins: tuple[str, ...] = ()

    @property
    def production(self) -> bool:
        return self.environment is Environment.PRODUCTION

    @property
    def auto_push(self) -> bool:
        """Whether start-up creates or updates the remote assistants of profiles that lack one."""
        if self.assistants_auto_push is not None:
            return self.assistants_auto_push
        return not self.production

    @property
    def serve_playground(self) -> bool:
        """Whether ``/`` serves the playground page."""
        if self.playground is not None:
            return self.playground is Switch.ON
        return not self.production

    @property
    def backend(self) -> LLMBackend:
        """The language-model backend in effect (``llm_backend`` or the default it implies)."""
        if self.llm_backend is not None:
            return self.llm_backend
        if self.production or self.openai_api_key is not None:
            return LLMBackend.RESPONSES
        return LLMBackend.OFFLINE


PRODUCTION_REQUIRES = ("project_id", "bucket_id", "assistant_id")

# field -> (check, what a good value is); checked after structuring.
_RANGES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "openai_timeout": (lambda v: v > 0, "a positive number of seconds"),
    "conversation_ttl": (lambda v: v >= 60, "a number of seconds, 60 or more"),
    "run_lock_ttl": (lambda v: 1 <= v <= 3600, "a number of seconds from 1 to 3600"),
    "run_events_ttl": (lambda v: v >= 1, "a number of seconds, 1 or more"),
    "approval_ttl": (lambda v: v >= 1, "a number of seconds, 1 or more"),
    "openai_max_retries": (lambda v: 0 <= v <= 10, "an integer from 0 to 10"),
    "breaker_failures": (lambda v: v >= 1, "a positive integer"),
    "breaker_cooldown": (lambda v: v > 0, "a positive number of seconds"),
    "config_cache_ttl": (lambda v: v >= 0, "a number of seconds, 0 or more"),
    "secret_cache_ttl": (lambda v: v >= 0, "a number of seconds, 0 or more"),
    "port": (lambda v: 0 <= v <= 65_535, "a port number from 0 to 65535"),
    "metrics_port": (lambda v: 0 < v <= 65_535, "a port number from 1 to 65535"),
    "max_body_bytes": (lambda v: v > 0, "a positive number of bytes"),
    "max_message_length": (lambda v: v > 0, "a positive number of characters"),
    "max_ws_message_bytes": (lambda v: v > 0, "a positive number of bytes"),
    "max_concurrent_runs": (lambda v: v > 0, "a positive integer"),
    "graceful_timeout": (lambda v: v >= 0, "a number of seconds, 0 or more"),
    "ws_ping_interval": (lambda v: v > 0, "a positive number of seconds"),
    "ws_idle_timeout": (lambda v: v > 0, "a positive number of seconds"),
    "send_timeout": (lambda v: v > 0, "a positive number of seconds"),
}


def env_name(field: str) -> str:
    return field.upper()


def _number(kind: type[float | int]) -> Callable[[Any, Any], Any]:
    def structure(value: Any, _type: Any) -> Any:
        number = kind(str(value).strip())
        if isinstance(number, float) and not math.isfinite(number):
            raise ValueError("not finite")
        return number

    return structure


_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def _flag(value: Any, _type: Any) -> bool:
    text = str(value).strip().lower()
    if text in _TRUE | _FALSE:
        return text in _TRUE
    raise ValueError(f"not a flag: {value!r}")


def _converter() -> cattrs.Converter:
    converter = cattrs.Converter(detailed_validation=True)
    converter.register_structure_hook(bool, _flag)
    converter.register_structure_hook(int, _number(int))
    converter.register_structure_hook(float, _number(float))
    converter.register_structure_hook(
        Secret, lambda value, _: Secret(OPENAI_API_KEY_NAME, str(value))
    )
    converter.register_structure_hook(
        Settings,
        make_dict_structure_fn(
            Settings,
            converter,
            redis_url=override(struct_hook=lambda value, _: Secret("REDIS_URL", str(value))),
            api_keys=override(struct_hook=lambda value, _: Secret("API_KEYS", str(value))),
            cors_origins=override(struct_hook=lambda value, _: parse_origins(str(value))),
        ),
    )
    return converter


_CONVERTER = _converter()


def _expected(field: attrs.Attribute[Any], error: BaseException) -> str:
    if field.name == "cors_origins":
        return f"origins like https://app.example.com, comma-separated, or * ({error})"
    text = str(field.type)
    for kind in (
        LogLevel,
        LogFormat,
        LogStream,
        LLMBackend,
        ResponsesState,
        StateStoreKind,
        Environment,
        Switch,
        EventLoop,
        OpenAITransport,
    ):
        if kind.__name__ in text:
            return "one of " + "|".join(member.value for member in kind)
    if "bool" in text:
        return "one of true|false (or 1|0, yes|no, on|off)"
    if "int" in text:
        return "an integer"
    if "float" in text:
        return "a number"
    return "a valid value"


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read :class:`Settings` from ``environ`` (default ``os.environ``).

    Raises :class:`SettingsError` naming every invalid variable and, in
    production, every missing one. Never echoes a secret's value.
    """
    environ = os.environ if environ is None else environ
    fields = attrs.fields_dict(Settings)
    raw: dict[str, Any] = {}
    for name in fields:
        value = environ.get(env_name(name), "").strip()
        if value:
            raw[name] = _normalise(name, value)
    problems: list[str] = []
    try:
        settings = _CONVERTER.structure(raw, Settings)
    except cattrs.ClassValidationError as error:
        for exception, note in error.group_exceptions()[0]:
            field = fields[str(note.name)]
            shown = "" if field.name in _SECRET_FIELDS else f", got {raw.pop(field.name)!r}"
            raw.pop(field.name, None)
            wanted = _expected(field, exception)
            problems.append(f"{env_name(field.name)}: expected {wanted}{shown}")
        # Without the bad values the rest still structures: report its problems too.
        settings = _CONVERTER.structure(raw, Settings)
    for name, (check, wanted) in _RANGES.items():
        value = getattr(settings, name)
        if name in raw and not check(value):
            problems.append(f"{env_name(name)}: expected {wanted}, got {raw.get(name)!r}")
    if settings.production:
        missing = [env_name(name) for name in PRODUCTION_REQUIRES if not getattr(settings, name)]
        if missing:
            problems.append("production requires " + ", ".join(missing))
    problems.extend(_state_store_problems(settings))
    problems.extend(_limit_problems(settings))
    problems.extend(_cors_problems(settings))
    if problems:
        raise SettingsError("invalid settings: " + "; ".join(problems))
    return settings


def _state_store_problems(settings: Settings) -> list[str]:
    kind = settings.state_store
    if kind is StateStoreKind.REDIS and settings.redis_url is None:
        return ["STATE_STORE=redis requires REDIS_URL (redis://, rediss:// or unix://)"]
    if kind is StateStoreKind.FIRESTORE and not settings.project_id:
        return ["STATE_STORE=firestore requires PROJECT_ID"]
    return []


def _limit_problems(settings: Settings) -> list[str]:
    problems = []
    if settings.rate_limit is not None:
        try:
            # The server extra's: only a server with a limit needs it.
            from assistant_service.entrypoints.http.limiting import (  # noqa: PLC0415
                parse_rate_limit,
            )
        except ImportError:
            problems.append(
                "RATE_LIMIT needs the server extra: pip install 'assistant-service[server]'"
            )
        else:
            try:
                parse_rate_limit(settings.rate_limit)
            except ValueError as error:
                problems.append(f"RATE_LIMIT: {error}")
    if settings.trusted_proxies is not None:
        try:
            parse_networks(settings.trusted_proxies)
        except ValueError as error:
            problems.append(f"TRUSTED_PROXIES: {error}")
    return problems


def _cors_problems(settings: Settings) -> list[str]:
    if ANY in settings.cors_origins and settings.api_keys is None and not settings.api_keys_secret:
        # Without keys, any page could spend the service's budget through its visitors'
        # browsers (and reach a service only they can see, on their own network).
        return ["CORS_ORIGINS=* requires API keys (API_KEYS or API_KEYS_SECRET)"]
    return []


_SECRET_FIELDS = frozenset({"openai_api_key", "redis_url", "api_keys"})
_LOWERCASE = frozenset(
    {
        "environment",
        "log_format",
        "stream",
        "llm_backend",
        "responses_state",
        "state_store",
        "metrics",
        "playground",
        "event_loop",
        "openai_transport",
    }
)


def _normalise(name: str, value: str) -> str:
    # Choices are case-insensitive: "JSON" and "Production" are what people type.
    if name in _LOWERCASE:
        return value.lower()
    if name == "logging_level":
        return value.upper()
    return value
