"""Logging: structlog configured once, with stdlib ``logging`` routed through it.

Every line carries the bound context (``correlation_id``), a timestamp and a
level; JSON lines add ``severity`` and ``message`` for Cloud Logging. Values of
keys that look secret are redacted, every secret value the process holds is
masked (whole, encoded or partly echoed), and anything shaped like an API key
too: a second line of defence behind the :class:`~assistant_service.domain.secrets.Secret` type.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import orjson
import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from assistant_service.domain.secrets import mask_secrets
from assistant_service.entrypoints.settings import LogFormat, LogStream, Settings

REDACTED = "[REDACTED]"
_SECRET_KEY = re.compile(r"api[_-]?key|authorization|token|secret|password|cookie", re.IGNORECASE)
_HANDLER_NAME = "assistant_service"
# Fields the logging set-up writes itself (never from a caller or an upstream):
# nothing to mask in them.
_OWN_FIELDS = frozenset({"timestamp", "logger", "level", "severity"})
# Whether a field name looks secret, by name: field names repeat on every line.
_SECRET_NAMES: dict[str, bool] = {}
_MAX_NAMES = 1024
# Their INFO line per request repeats what openai.call says (and costs as much).
_QUIET_LIBRARIES = ("httpx", "httpx2")


def redact_secrets(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """Replace the values of secret-looking keys with ``[REDACTED]``; mask held and key-shaped secrets."""
    _redact_mapping(event_dict)
    return event_dict


def _secret_name(key: object) -> bool:
    name = str(key)
    known = _SECRET_NAMES.get(name)
    if known is None:
        known = _SECRET_KEY.search(name) is not None
        if len(_SECRET_NAMES) < _MAX_NAMES:  # bounded: past it, names are just looked at
            _SECRET_NAMES[name] = known
    return known


def _redact_mapping(mapping: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key, value in list(mapping.items()):
        if key in _OWN_FIELDS:
            continue
        if value is not None and _secret_name(key):
            mapping[key] = REDACTED
        else:
            mapping[key] = _redact_value(value)
    return mapping


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return mask_secrets(value)
    if isinstance(value, dict):
        return _redact_mapping(dict(value))
    if isinstance(value, (list, tuple)):
        return type(value)(_redact_value(item) for item in value)
    return value


def _json_line(event_dict: EventDict, **_options: Any) -> str:
    """A line's JSON: keys that are not strings become strings, other objects their repr."""
    try:
        return orjson.dumps(event_dict, default=_loggable, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:  # an integer past 64 bits, a lone surrogate: the json module takes them
        return json.dumps(event_dict, default=_loggable)


def _loggable(value: object) -> object:
    structlog_form = getattr(value, "__structlog__", None)
    return structlog_form() if callable(structlog_form) else repr(value)


def add_severity(_logger: WrappedLogger, method: str, event_dict: EventDict) -> EventDict:
    """Cloud Logging reads the level from ``severity``."""
    level = event_dict.pop("level", method)
    event_dict["severity"] = "WARNING" if level == "warn" else str(level).upper()
    return event_dict


_GCP_TRACE = "logging.googleapis.com/trace"
_GCP_SPAN = "logging.googleapis.com/spanId"
_GCP_SAMPLED = "logging.googleapis.com/trace_sampled"


def _span_ids_reader() -> Any:
    try:
        from assistant_service.adapters.observability.otel import (  # noqa: PLC0415
            current_span_ids,
        )

        current_span_ids()  # the SDK's API imports here, once
    except ImportError:
        return None
    return current_span_ids


def trace_context(project_id: str | None) -> Processor:
    """Adds ``trace_id``/``span_id`` of the current span, and Cloud Logging's trace fields.

    The span is OpenTelemetry's when one is current; else the ids the HTTP edge
    bound from the request's ``traceparent`` or ``X-Cloud-Trace-Context``. With
    ``project_id`` (``PROJECT_ID``) the line gets ``logging.googleapis.com/trace``
    and ``spanId``, which Cloud Logging groups under the trace.
    """
    read = _span_ids_reader()

    def add(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
        ids = read() if read is not None else None
        sampled = None
        if ids is not None:
            event_dict["trace_id"], event_dict["span_id"], sampled = ids
        trace_id = event_dict.get("trace_id")
        if trace_id and project_id:
            event_dict[_GCP_TRACE] = f"projects/{project_id}/traces/{trace_id}"
            if event_dict.get("span_id"):
                event_dict[_GCP_SPAN] = event_dict["span_id"]
            if sampled is not None:
                event_dict[_GCP_SAMPLED] = sampled
        return event_dict

    return add


def _pre_chain() -> list[Processor]:
    # Applied to structlog and stdlib records alike, before rendering.
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.ExtraAdder(),
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
    ]


def _renderers(log_format: LogFormat, project_id: str | None = None) -> list[Processor]:
    if log_format is LogFormat.JSON:
        return [
            trace_context(project_id),
            structlog.processors.format_exc_info,
            add_severity,
            structlog.processors.EventRenamer("message"),
            redact_secrets,
            structlog.processors.JSONRenderer(serializer=_json_line),
        ]
    return [
        structlog.processors.format_exc_info,
        trace_context(None),
        redact_secrets,
        structlog.processors.KeyValueRenderer(
            key_order=["timestamp", "level", "event", "logger"], drop_missing=True
        ),
    ]


class _DirectWriter:
    """The last structlog processor: render the line and write it to the handler's stream.

    A structlog event would otherwise become a stdlib record, be copied by
    ``ProcessorFormatter`` and go through the handler chain: about half the cost
    of a line, paid twice per chat turn. The line is written here, the same one
    the formatter would write, whenever that handler is the only place a record
    of the logger would reach (no other handler or filter on the way to the root);
    otherwise (a test's ``caplog``, an application's own handler) the event goes
    on to stdlib ``logging`` as before.
    """

    def __init__(self, handler: logging.StreamHandler[TextIO], render: list[Processor]) -> None:
        self._handler = handler
        self._render = render

    def __call__(self, logger: WrappedLogger, method: str, event_dict: EventDict) -> Any:
        if not self._reaches_only_our_handler(logger):
            return structlog.stdlib.ProcessorFormatter.wrap_for_formatter(
                logger, method, event_dict
            )
        line: Any = event_dict
        handler = self._handler
        try:
            for render in self._render:
                line = render(logger, method, line)
            handler.acquire()
            try:
                handler.stream.write(line + handler.terminator)
                handler.flush()
            finally:
                handler.release()
        except Exception:  # noqa: BLE001 -- as logging's own emit: a line never fails its caller
            handler.handleError(logging.makeLogRecord({"msg": str(line)[:1000]}))
        raise structlog.DropEvent

    def _reaches_only_our_handler(self, logger: Any) -> bool:
        if self._handler.filters:
            return False
        current = logger
        while current is not None:
            if current.filters:
                return False
            handlers = current.handlers
            if current.parent is None:  # the root
                return len(handlers) == 1 and handlers[0] is self._handler
            if handlers or not current.propagate:
                return False
            current = current.parent
        return False


def configure_logging(settings: Settings, stream: TextIO | None = None) -> None:
    """Configure structlog and the stdlib root logger; calling it again replaces the setup.

    ``stream`` overrides ``settings.stream`` (tests pass a buffer).
    """
    if stream is None:
        stream = sys.stdout if settings.stream is LogStream.STDOUT else sys.stderr
    renderers = _renderers(settings.log_format, settings.project_id)
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_pre_chain(),
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *renderers],
    )
    handler = logging.StreamHandler(stream)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.logging_level.value)
    # Hypercorn's error log goes through the root handler; its access log stays off
    # (the app writes one access line per request itself).
    hypercorn_error = logging.getLogger("hypercorn.error")
    hypercorn_error.handlers.clear()
    hypercorn_error.propagate = True
    for name in _QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(logging.WARNING)
    structlog.configure(
        processors=[
            # First: a line below the level costs one check, not a context merge.
            structlog.stdlib.filter_by_level,
            structlog.contextvars.merge_contextvars,
            structlog.stdlib.add_logger_name,
            structlog.stdlib.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
            structlog.processors.StackInfoRenderer(),
            _DirectWriter(handler, renderers),
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
