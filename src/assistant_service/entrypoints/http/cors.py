"""Cross-origin calls from browsers: ``CORS_ORIGINS``, preflights, and the WebSocket's ``Origin``.

``CORS_ORIGINS`` lists the web origins (``https://app.example.com``) whose
pages may call the API; ``*`` lets every origin in (settings allow it only
with API keys on). For a listed origin a preflight is answered ``204`` with
what the API accepts, and every response says the origin may read it and
which headers it may see. A preflight from any other origin is refused
(``403 origin_refused``) and no response carries CORS headers for it; with
nothing listed (the default) no response carries them at all.

A WebSocket handshake whose ``Origin`` is neither listed nor the service's
own (its host is the request's ``Host``: the playground served here) is
refused ``403``, so that no other site's page opens sockets with its
visitors' browsers. One with no ``Origin`` (not a browser) goes on to the
API-key check.

An ASGI middleware, not a Quart hook: a preflight is answered before the
API-key check (browsers send no credentials with one) and never reaches a
route, and every response gets its headers, errors included.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from urllib.parse import urlsplit

import attrs
import structlog

from assistant_service.entrypoints.http.codec import dumps
from assistant_service.entrypoints.http.correlation import (
    HEADER as CORRELATION_HEADER,
)
from assistant_service.entrypoints.http.correlation import (
    ASGIApp,
    Message,
    Receive,
    Scope,
    Send,
    correlation_id_of,
)

log = structlog.get_logger(__name__)

ANY = "*"
ALLOW_METHODS = "GET, HEAD, POST"
ALLOW_HEADERS = (
    "Authorization",
    "X-API-Key",
    "Content-Type",
    CORRELATION_HEADER,
    "Last-Event-ID",
    "traceparent",
    "tracestate",
)
EXPOSE_HEADERS = (
    CORRELATION_HEADER,
    "Retry-After",
    "WWW-Authenticate",
    "RateLimit",
    "RateLimit-Policy",
    "RateLimit-Limit",
    "RateLimit-Remaining",
    "RateLimit-Reset",
)
_ALLOW_HEADERS = ", ".join(ALLOW_HEADERS).encode()
_EXPOSE_HEADERS = ", ".join(EXPOSE_HEADERS).encode()
# Browsers cap it (Chromium at 2 hours); 10 minutes lets a changed list take effect soon.
MAX_AGE_SECONDS = 600
_DEFAULT_PORTS = {"http": 80, "https": 443}
# An Origin header longer than this is no browser's: refused without parsing.
_MAX_ORIGIN_LENGTH = 512


def parse_origin(text: str) -> str:
    """``text`` as a browser writes it in ``Origin``: ``scheme://host[:port]``, lower case.

    The default port is dropped and a trailing ``/`` allowed. Raises
    ``ValueError`` saying what is wrong (another scheme, a path, a query,
    credentials, a bad port).
    """
    parts = urlsplit(text.strip())
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise ValueError("expected http(s)://host[:port]")
    if parts.path not in {"", "/"} or parts.query or parts.fragment or "@" in parts.netloc:
        raise ValueError("an origin is scheme://host[:port], with no path, query or user")
    port = parts.port  # raises ValueError for a port out of range
    host = parts.hostname
    if ":" in host:
        host = f"[{host}]"  # IPv6, as the URL writes it
    suffix = "" if port is None or port == _DEFAULT_PORTS[scheme] else f":{port}"
    return f"{scheme}://{host}{suffix}"


def parse_origins(raw: str) -> tuple[str, ...]:
    """``CORS_ORIGINS``: comma-separated origins, or ``*``; ``ValueError`` naming a bad one."""
    origins: list[str] = []
    for entry in (part.strip() for part in raw.split(",")):
        if not entry:
            continue
        if entry == ANY:
            origins.append(ANY)
            continue
        try:
            origins.append(parse_origin(entry))
        except ValueError as error:
            raise ValueError(f"{entry!r}: {error}") from None
    return tuple(dict.fromkeys(origins))


@attrs.frozen
class CorsPolicy:
    """Which origins may call: the normalised ``CORS_ORIGINS``."""

    origins: frozenset[str] = frozenset()

    @classmethod
    def of(cls, origins: Iterable[str]) -> CorsPolicy:
        return cls(frozenset(origins))

    @property
    def enabled(self) -> bool:
        return bool(self.origins)

    def allows(self, origin: str | None) -> bool:
        """Whether a page of ``origin`` (the ``Origin`` header as sent) may call the API."""
        if not origin or len(origin) > _MAX_ORIGIN_LENGTH:
            return False
        if ANY in self.origins:
            return True
        try:
            return parse_origin(origin) in self.origins
        except ValueError:
            return False  # "null" (a sandboxed page, a file), or no origin at all

    def allows_socket(self, origin: str | None, host: str | None) -> bool:
        """Whether a WebSocket handshake may go on: no ``Origin``, the service's own, or allowed."""
        if origin is None:
            return True
        return self.allows(origin) or _same_origin(origin, host)


def _same_origin(origin: str, host: str | None) -> bool:
    """Whether ``origin`` names the host the request came to (the playground's own page)."""
    if not host or len(origin) > _MAX_ORIGIN_LENGTH:
        return False
    try:
        own = parse_origin(origin)
        scheme = own.partition("://")[0]
        return parse_origin(f"{scheme}://{host}") == own
    except ValueError:
        return False


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            text: str = value.decode("latin-1")
            return text
    return None


@attrs.define
class CorsMiddleware:
    """Wraps an ASGI app with the :class:`CorsPolicy` of ``CORS_ORIGINS``."""

    app: ASGIApp
    policy: CorsPolicy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        origin = _header(scope, b"origin")
        allowed = self.policy.allows(origin)
        if (
            scope.get("method") == "OPTIONS"
            and origin is not None
            and _header(scope, b"access-control-request-method") is not None
        ):
            if allowed:
                await _respond(send, "http", 204, b"", _preflight_headers(origin))
            else:
                await self._refuse(scope, send, "http", "cors.preflight_refused", origin)
            return
        if not self.policy.enabled:
            await self.app(scope, receive, send)
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = _with_cors(message.get("headers", []), origin, allowed)
            await send(message)

        await self.app(scope, receive, send_with_cors)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        origin = _header(scope, b"origin")
        if self.policy.allows_socket(origin, _header(scope, b"host")):
            await self.app(scope, receive, send)
            return
        assert origin is not None  # noqa: S101 -- a socket without one is allowed
        if "websocket.http.response" in scope.get("extensions", {}):
            await self._refuse(scope, send, "websocket.http", "websocket.origin_refused", origin)
        else:
            # A server without the denial extension answers a close before accept with 403.
            log.info("websocket.origin_refused", origin=origin[:_MAX_ORIGIN_LENGTH])
            await send({"type": "websocket.close", "code": 1008})

    async def _refuse(self, scope: Scope, send: Send, kind: str, event: str, origin: str) -> None:
        log.info(event, origin=origin[:_MAX_ORIGIN_LENGTH])
        body = dumps(
            {
                "error": {
                    "code": "origin_refused",
                    "message": "this origin is not allowed to call the service (CORS_ORIGINS)",
                    "correlation_id": correlation_id_of(scope),
                }
            }
        ).encode()
        await _respond(send, kind, 403, body, [(b"content-type", b"application/json")])


async def _respond(
    send: Send, kind: str, status: int, body: bytes, headers: list[tuple[bytes, bytes]]
) -> None:
    """A whole response: ``kind`` is ``http`` or ``websocket.http`` (a refused handshake)."""
    headers = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": f"{kind}.response.start", "status": status, "headers": headers})
    await send({"type": f"{kind}.response.body", "body": body, "more_body": False})


def _preflight_headers(origin: str) -> list[tuple[bytes, bytes]]:
    return [
        (b"access-control-allow-origin", origin.encode("latin-1")),
        (b"access-control-allow-methods", ALLOW_METHODS.encode()),
        (b"access-control-allow-headers", _ALLOW_HEADERS),
        (b"access-control-max-age", str(MAX_AGE_SECONDS).encode()),
        (b"vary", b"Origin"),
    ]


def _with_cors(
    headers: Sequence[tuple[bytes, bytes]], origin: str | None, allowed: bool
) -> list[tuple[bytes, bytes]]:
    """The response's headers, with the CORS ones for ``origin`` when it is allowed.

    ``Vary: Origin`` goes on every response while CORS is on: a cache must not
    hand one origin's answer to another.
    """
    out: list[tuple[bytes, bytes]] = []
    vary: list[bytes] = []
    for name, value in headers:
        lowered = name.lower()
        if lowered == b"vary":
            vary.append(value)
        elif not (allowed and lowered == b"access-control-allow-origin"):
            out.append((name, value))  # an allowed origin's own value replaces a page's "*"
    named = {part.strip().lower() for v in vary for part in v.split(b",")}
    if not named & {b"origin", b"*"}:
        vary.append(b"Origin")
    out.append((b"vary", b", ".join(vary)))
    if allowed and origin is not None:
        out.append((b"access-control-allow-origin", origin.encode("latin-1")))
        out.append((b"access-control-expose-headers", _EXPOSE_HEADERS))
    return out
