"""Pages for people: the playground at ``/``, the API reference at ``/docs``, their assets.

The HTML, scripts and styles ship in the package (``assets/``), are read
once when the app is made, and are served under a strict
Content-Security-Policy: no inline script or style, nothing from another
origin, the page's sockets only to the server that served it. No CDN, no
build step: the pages work offline.
"""

from __future__ import annotations

import re
from importlib import resources

from quart import Quart, Response, request

from assistant_service.domain.errors import NotFoundError
from assistant_service.entrypoints.http.codec import dumps
from assistant_service.entrypoints.http.openapi import openapi_document

ASSETS = {
    "playground.js": "text/javascript",
    "playground.css": "text/css",
    "docs.js": "text/javascript",
}
PAGES = ("playground.html", "docs.html")
# A Host header is echoed into connect-src only when it is a plain host[:port].
_HOST = re.compile(r"[A-Za-z0-9.\-]{1,253}(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]{2,45}\](:[0-9]{1,5})?")


def _read(name: str) -> bytes:
    return resources.files(__package__).joinpath("assets", name).read_bytes()


def content_security_policy(host: str | None) -> str:
    """The pages' policy; the WebSocket may reach ``host`` (the page's own server) only."""
    sockets = f" ws://{host} wss://{host}" if host and _HOST.fullmatch(host) else ""
    return (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
        f" connect-src 'self'{sockets}; base-uri 'none'; form-action 'none';"
        " frame-ancestors 'none'"
    )


def _page(body: bytes, content_type: str) -> Response:
    response = Response(body, status=200, content_type=content_type)
    response.headers["Content-Security-Policy"] = content_security_policy(request.host)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-cache"
    return response


def register_pages(
    app: Quart,
    *,
    playground: bool,
    metrics: bool,
    api_keys: bool = False,
    rate_limits: bool = False,
) -> None:
    """``/openapi.json``, ``/docs`` and ``/assets/<name>``; ``/`` too when ``playground``."""
    assets = {name: _read(name) for name in (*ASSETS, *PAGES)}
    document = dumps(
        openapi_document(
            metrics=metrics, playground=playground, api_keys=api_keys, rate_limits=rate_limits
        )
    ).encode()

    @app.get("/openapi.json")
    async def openapi() -> Response:
        response = Response(document, status=200, content_type="application/json")
        response.headers["Access-Control-Allow-Origin"] = "*"
        return response

    @app.get("/docs")
    async def docs() -> Response:
        return _page(assets["docs.html"], "text/html; charset=utf-8")

    @app.get("/assets/<name>")
    async def asset(name: str) -> Response:
        content_type = ASSETS.get(name)
        if content_type is None:
            raise NotFoundError("asset", name[:64])
        return _page(assets[name], f"{content_type}; charset=utf-8")

    if playground:

        @app.get("/")
        async def index() -> Response:
            return _page(assets["playground.html"], "text/html; charset=utf-8")
