"""A threaded loopback HTTP server the fakes share: start, stop, and its base URL."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Callable
from typing import Any

from typing_extensions import Self

Handler = Callable[["Request"], tuple[int, dict[str, Any]]]


class Request:
    """What a fake sees of one request."""

    def __init__(self, method: str, path: str, headers: dict[str, str], body: bytes) -> None:
        self.method = method
        self.path = path
        self.headers = headers
        self.body = body


def google_error(status: int, message: str) -> dict[str, Any]:
    """Google's JSON error body (``google.rpc.Status`` over HTTP)."""
    statuses = {
        400: "INVALID_ARGUMENT",
        401: "UNAUTHENTICATED",
        403: "PERMISSION_DENIED",
        404: "NOT_FOUND",
        429: "RESOURCE_EXHAUSTED",
        500: "INTERNAL",
        503: "UNAVAILABLE",
    }
    return {
        "error": {
            "code": status,
            "message": message,
            "status": statuses.get(status, "UNKNOWN"),
            "errors": [{"message": message, "domain": "global", "reason": "fake"}],
        }
    }


class LoopbackServer:
    """Serves ``handler`` on 127.0.0.1 (a free port) in a thread; a context manager."""

    def __init__(self, handler: Handler) -> None:
        self.requests: list[Request] = []
        outer = self

        class _Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                request = Request(
                    self.command, self.path, dict(self.headers), self.rfile.read(length)
                )
                outer.requests.append(request)
                status, body = handler(request)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=UTF-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve  # noqa: N815

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass  # keep test output clean

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def error_server(status: int, message: str = "denied by the fake") -> LoopbackServer:
    """A server that answers every request with ``status`` and Google's error body."""
    return LoopbackServer(lambda _request: (status, google_error(status, message)))


def closed_port_url() -> str:
    """A loopback URL where nothing listens (connections are refused)."""
    import socket  # noqa: PLC0415

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
