"""What every OpenAI adapter shares: the client, the upstream headers, the call log.

Make one client per process (:func:`make_openai_client`) and hand it to every
adapter: its connection pool is then reused across requests. Close it with
``await client.close()`` when the process stops.

The SDK retries connection errors, timeouts and 408, 409, 429 and 5xx answers
by itself (with exponential backoff, honouring ``Retry-After`` up to two
minutes) as long as no byte of a stream has been read; a stream that breaks
later is never retried, the step fails instead.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Literal

import openai

from assistant_service.adapters._logs import get_logger
from assistant_service.adapters.correlation import current_correlation_id
from assistant_service.adapters.json_text import dumps_bytes
from assistant_service.adapters.llm.openai._errors import (
    redact,
    retry_after,
    status_error,
    translate_openai_errors,
)
from assistant_service.adapters.observability.propagation import trace_headers
from assistant_service.domain.errors import UpstreamError
from assistant_service.domain.secrets import Secret

__all__ = [
    "CORRELATION_HEADER",
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_TIMEOUT",
    "OpenAITransport",
    "log_upstream_call",
    "make_openai_client",
    "post_stream",
    "redact",
    "retry_after",
    "status_error",
    "translate_openai_errors",
    "upstream_headers",
]

# A chat user waits for the answer: fail within a minute of silence rather than
# the SDK's ten, and find out fast (5 s) that the host cannot be reached.
DEFAULT_TIMEOUT = 60.0
DEFAULT_CONNECT_TIMEOUT = 5.0
# Two retries (about 0.5 s then 1 s of backoff) ride out a blip without making
# a user wait long behind an outage.
DEFAULT_MAX_RETRIES = 2

CORRELATION_HEADER = "X-Client-Request-Id"

# How the SDK's client talks HTTP: ``httpx`` (httpx2's own transport, the SDK's
# default; any async library) or ``aiohttp`` (the SDK's ``DefaultAioHttpClient``:
# the same httpx2 client, its requests carried by aiohttp; asyncio only);
# ``auto`` takes aiohttp when installed.
OpenAITransport = Literal["auto", "httpx", "aiohttp"]

log = get_logger("assistant_service.openai")


def make_openai_client(  # noqa: PLR0913 -- the client's settings, all keyword-only
    *,
    api_key: str | Secret | Callable[[], Awaitable[str]],
    base_url: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    max_retries: int = DEFAULT_MAX_RETRIES,
    transport: OpenAITransport = "httpx",
) -> openai.AsyncOpenAI:
    """The process's shared ``AsyncOpenAI`` client.

    ``timeout`` bounds each network wait (connecting excepted: ``connect_timeout``),
    so a stream fails after ``timeout`` seconds with no byte, however long it runs
    in total. ``max_retries`` applies before a response starts (0 turns retries
    off). ``base_url`` (or the SDK's ``OPENAI_BASE_URL``) points at a compatible
    server. The key (a str, a :class:`Secret`, or an async function the SDK calls
    before each request, so a rotated key is picked up) goes to the SDK only,
    never to a log.

    ``transport`` (see :data:`OpenAITransport`): on bench/relay.py aiohttp spends
    about a fifth less CPU per streamed call than httpx2's own transport, the
    default here because aiohttp runs on asyncio only (the service's
    ``OPENAI_TRANSPORT`` defaults to ``auto``: it always runs on asyncio). Either
    way the requests go through the SDK's client (its auth, retries, timeouts,
    errors and stream parsing). ``"aiohttp"`` without the package installed
    raises ``ValueError``.
    """
    return openai.AsyncOpenAI(
        api_key=api_key.reveal() if isinstance(api_key, Secret) else api_key,
        base_url=base_url,
        timeout=openai.Timeout(timeout, connect=connect_timeout),
        max_retries=max_retries,
        http_client=_http_client(transport),
    )


def _http_client(transport: OpenAITransport) -> Any:
    """The httpx2 client for the SDK: None leaves the SDK its default (httpx2's transport)."""
    if transport not in {"auto", "httpx", "aiohttp"}:
        raise ValueError(f"unknown transport {transport!r}: auto, httpx or aiohttp")
    if transport == "httpx":
        return None
    try:
        import aiohttp  # noqa: F401, PLC0415 -- only whether the SDK's extra is installed
    except ImportError:
        if transport == "auto":
            return None
        raise ValueError(
            "the aiohttp transport needs aiohttp: pip install 'openai[aiohttp]'"
        ) from None
    # The SDK's own subclass: its timeout, connection limits and redirects defaults.
    return openai.DefaultAioHttpClient()


async def post_stream(
    client: openai.AsyncOpenAI, path: str, body: Mapping[str, Any]
) -> openai.AsyncStream[Any]:
    """POST ``body`` to ``path`` (``/chat/completions``, ``/responses``) and stream its events.

    ``body`` is already the request in the wire format (the adapters keep plain
    JSON), so it goes through the SDK's own client as it is: the SDK's auth (the
    key provider before each request), retries, timeouts, error classes and SSE
    parsing all apply, but not the typed ``create(...)``'s transform of every
    parameter, which walks the whole history on each request. The events come as
    plain JSON (dicts), not as SDK models. A 200 that is not an event stream
    raises ``UpstreamError`` (an upstream fault).
    """
    stream: openai.AsyncStream[Any] = await client.post(
        _request_url(client, path),
        cast_to=object,
        # Encoded here (orjson): the SDK sends bytes as they are.
        content=dumps_bytes(body),
        # The typed create(...) asks for the same: the key as a bearer token.
        options={"headers": upstream_headers(), "security": {"bearer_auth": True}},
        stream=True,
        # Events read as the plain JSON they arrive in: the SDK builds no model for them.
        stream_cls=openai.AsyncStream[object],
    )
    media_type = stream.response.headers.get("content-type", "").partition(";")[0].strip()
    if media_type and media_type.lower() != "text/event-stream":
        # A proxy or server that ignored "stream": true (a JSON body, an HTML page):
        # say so, rather than report a stream that ended before its answer.
        await stream.close()
        raise UpstreamError(
            f"the model server answered {media_type[:60]!r}, not an event stream", fault=True
        )
    return stream


def _request_url(client: openai.AsyncOpenAI, path: str) -> str:
    """``path`` under the client's base URL, absolute, for a plain ``AsyncOpenAI``.

    The SDK would parse the relative path and then copy its base URL with the
    joined path, on every request (about 2 % of a streamed turn's CPU); an
    absolute URL is parsed once. A subclass (Azure's client rewrites deployment
    paths) gets the path as it is.
    """
    base = client.base_url
    if type(client) is not openai.AsyncOpenAI or base.query or base.fragment:
        return path
    # The SDK keeps its base URL with a trailing slash.
    return f"{base}{path.lstrip('/')}"


def upstream_headers() -> dict[str, str]:
    """Per-request headers for the SDK's ``extra_headers``.

    The correlation id, when bound, and the trace context (``traceparent``) when
    OpenTelemetry is installed and a span is current.
    """
    headers = trace_headers()
    current = current_correlation_id()
    if current is not None:
        headers[CORRELATION_HEADER] = current
    return headers


def log_upstream_call(operation: str, **fields: object) -> None:
    """Log one upstream call, with the correlation id (also when contextvars are not merged)."""
    log.info("openai.call", operation=operation, correlation_id=current_correlation_id(), **fields)
