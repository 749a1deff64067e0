"""Observability at the edge: the ASGI chain around the app, route templates, ``/metrics``.

The chain, outermost first: the OpenTelemetry ASGI instrumentation (when
tracing is on; else a middleware that binds the trace ids of the incoming
``traceparent`` or ``X-Cloud-Trace-Context`` so log lines still join the
platform's trace), the correlation middleware, then :class:`ObservingMiddleware`,
which reports each request and socket by route template to the observer.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, MutableMapping
from typing import Any

import anyio
import attrs
import structlog
from quart import Quart, Response
from werkzeug.exceptions import HTTPException
from werkzeug.routing import RequestRedirect

from assistant_service.entrypoints.http.correlation import (
    SCOPE_KEY,
    ASGIApp,
    CorrelationMiddleware,
    Message,
    Receive,
    Scope,
    Send,
)
from assistant_service.entrypoints.observability import Observability
from assistant_service.ports.observer import HttpRequest, Observer

# Paths no rule matches share one label: a scanner's paths must not mint series.
UNMATCHED = "unmatched"
METRICS_PATH = "/metrics"

_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$")
_CLOUD_TRACE = re.compile(r"^([0-9a-fA-F]{32})(?:/(\d{1,20}))?(?:;o=[01])?$")
_ZERO_TRACE = "0" * 32


def observed_asgi(
    app: Quart, observability: Observability, *, stopping: anyio.Event | None
) -> ASGIApp:
    """``app.asgi_app`` wrapped in the chain of the module docstring."""
    routes = RouteTemplates(app)
    tracing = observability.tracer_provider is not None
    annotate: Callable[[str], None] | None = None
    if tracing:
        from assistant_service.adapters.observability import otel  # noqa: PLC0415

        annotate = otel.annotate_request_span
    asgi: ASGIApp = ObservingMiddleware(
        app.asgi_app, observer=observability.observer, routes=routes, annotate=annotate
    )
    asgi = CorrelationMiddleware(asgi, stopping=stopping)
    if tracing:
        return otel.asgi_middleware(asgi, observability.tracer_provider, routes.span_details)  # type: ignore[no-any-return]
    return TraceHeadersMiddleware(asgi)


def register_observability(app: Quart, observability: Observability) -> None:
    """Upstream calls reported while the app serves; ``GET /metrics`` when served on this port."""
    unsubscribe: list[Callable[[], None]] = []

    @app.before_serving
    async def report_upstream_calls() -> None:
        unsubscribe.append(observability.subscribe_upstream())

    @app.after_serving
    async def stop_reporting() -> None:
        while unsubscribe:
            unsubscribe.pop()()

    if not observability.serve_metrics_route:
        return
    from assistant_service.adapters.observability.prometheus import (  # noqa: PLC0415
        CONTENT_TYPE,
        exposition,
    )

    @app.get(METRICS_PATH)
    async def metrics() -> Response:
        return Response(exposition(observability.metrics_registry), content_type=CONTENT_TYPE)


# Templates of paths already matched (/chat, /start, /stream repeat on every turn):
# at most this many, forgotten all at once when full.
_KNOWN_PATHS = 1024


@attrs.define
class RouteTemplates:
    """The template of the rule a request matches (``/threads/<thread_id>/messages``)."""

    _app: Quart
    _known: dict[tuple[str, str, str], str] = attrs.field(factory=dict, init=False)

    def of(self, scope: MutableMapping[str, Any]) -> str:
        key = (scope["type"], str(scope.get("method", "GET")), str(scope.get("path", "/")))
        template = self._known.get(key)
        if template is None:
            template = self._match(scope)
            if len(self._known) >= _KNOWN_PATHS:
                self._known.clear()
            self._known[key] = template
        return template

    def _match(self, scope: MutableMapping[str, Any]) -> str:
        websocket = scope["type"] == "websocket"
        adapter = self._app.url_map.bind("localhost")
        try:
            rule, _ = adapter.match(
                scope.get("path", "/"),
                method=scope.get("method", "GET"),
                return_rule=True,
                websocket=websocket,
            )
        except RequestRedirect:
            return UNMATCHED
        except HTTPException:
            return UNMATCHED
        return str(rule.rule)

    def span_details(self, scope: MutableMapping[str, Any]) -> tuple[str, dict[str, Any]]:
        """The ASGI instrumentation's span name and attributes: by template, not path."""
        route = self.of(scope)
        if scope["type"] == "websocket":
            return f"WEBSOCKET {route}", {"http.route": route}
        method = scope.get("method", "GET")
        return f"{method} {route}", {"http.route": route, "http.request.method": method}


@attrs.define
class ObservingMiddleware:
    """Reports each request and socket to ``observer`` by route template, method and status."""

    app: ASGIApp
    observer: Observer
    routes: RouteTemplates
    annotate: Callable[[str], None] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in {"http", "websocket"}:
            await self.app(scope, receive, send)
            return
        if self.annotate is not None and SCOPE_KEY in scope:
            self.annotate(scope[SCOPE_KEY])
        started = time.perf_counter()
        status: int | None = None
        opened = False

        async def observed_send(message: Message) -> None:
            nonlocal status, opened
            sent = message["type"]
            if sent in {"http.response.start", "websocket.http.response.start"}:
                status = int(message["status"])
            elif sent == "websocket.accept":
                status = 101
                opened = True
                self.observer.websocket_opened()
            elif sent == "websocket.close" and status is None:
                status = 403
            await send(message)

        try:
            await self.app(scope, receive, observed_send)
        except Exception:
            status = status or 500
            raise
        finally:
            if opened:
                self.observer.websocket_closed()
            self.observer.http_request(
                HttpRequest(
                    route=self.routes.of(scope),
                    method="GET" if kind == "websocket" else str(scope.get("method", "GET")),
                    protocol=kind,
                    status=status or 499,
                    seconds=time.perf_counter() - started,
                )
            )


@attrs.define
class TraceHeadersMiddleware:
    """Binds ``trace_id``/``span_id`` of the incoming trace headers for the request's logs.

    Used when tracing is off: Cloud Run's load balancer sends both headers, so
    the request's lines still group under the platform's trace.
    """

    app: ASGIApp

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        ids = trace_of_headers(scope.get("headers", ())) if scope["type"] != "lifespan" else None
        if ids is None:
            await self.app(scope, receive, send)
            return
        with structlog.contextvars.bound_contextvars(trace_id=ids[0], span_id=ids[1]):
            await self.app(scope, receive, send)


def trace_of_headers(headers: Any) -> tuple[str, str] | None:
    """``(trace_id, span_id)`` in hex from ``traceparent``, else ``X-Cloud-Trace-Context``."""
    cloud: str | None = None
    for name, value in headers:
        lowered = name.lower()
        if lowered == b"traceparent":
            match = _TRACEPARENT.match(value.decode("latin-1").strip())
            if match and match.group(1) != _ZERO_TRACE:
                return match.group(1), match.group(2)
        elif lowered == b"x-cloud-trace-context":
            cloud = value.decode("latin-1").strip()
    if cloud is None:
        return None
    match = _CLOUD_TRACE.match(cloud)
    if not match or match.group(1) == _ZERO_TRACE:
        return None
    span = int(match.group(2) or 0)
    # The header's span id is decimal; Cloud Logging and W3C want 16 hex digits.
    return match.group(1).lower(), f"{span:016x}" if span < 2**64 else "0" * 16
