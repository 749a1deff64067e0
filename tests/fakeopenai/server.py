"""A loopback HTTP server that speaks the OpenAI wire protocol, for the real SDK to talk to.

The core knows nothing of OpenAI's resources: modules such as
:mod:`fakeopenai.responses` register *routes* (method, path pattern, name,
handler). A handler gets the :class:`RecordedRequest` and returns a reply:
:class:`JSONReply`, :class:`RawReply` (bytes as they are) or :class:`SSEReply` (a list of SSE items, among them
:class:`Pause`, :class:`Raw` bytes and :class:`Drop` to cut the connection).

Tests steer it two ways:

- ``server.script(route_name, *replies)`` queues replies that answer the next
  requests to that route *instead of* its handler (a reply may be a callable
  ``(request) -> reply``): status errors, slow answers, broken streams.
- every request is recorded in ``server.requests`` (method, path, query,
  lower-cased headers, parsed JSON body), so tests assert what the SDK sent.

It runs in a thread (``ThreadingHTTPServer``), HTTP/1.1 with keep-alive and
chunked streams, so the SDK's connection pool is exercised as in production.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import threading
from collections import deque
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import attrs
from typing_extensions import Self

MAX_BODY = 8 * 1024 * 1024


@attrs.frozen
class RecordedRequest:
    """One request as the server received it; ``params`` are the route pattern's groups."""

    method: str
    path: str
    query: Mapping[str, list[str]]
    headers: Mapping[str, str]
    body: Any
    route: str | None = None
    params: Mapping[str, str] = attrs.field(factory=dict)


@attrs.frozen
class JSONReply:
    body: Any
    status: int = 200
    headers: Mapping[str, str] = attrs.field(factory=dict)
    delay: float = 0.0  # seconds before the status line: a slow upstream


@attrs.frozen
class RawReply:
    """A body sent as it is: a reply that is not JSON (an HTML error page, a truncated body)."""

    body: bytes
    status: int = 200
    content_type: str = "application/json"
    headers: Mapping[str, str] = attrs.field(factory=dict)
    delay: float = 0.0


@attrs.frozen
class SSEEvent:
    """One server-sent event; ``data`` is JSON-encoded unless it is a str."""

    data: Any
    event: str | None = None


@attrs.frozen
class Raw:
    """Bytes written into the stream as they are (a malformed event, a comment)."""

    data: bytes


@attrs.frozen
class Pause:
    seconds: float


@attrs.frozen
class Drop:
    """Cut the connection here, without ending the chunked body."""


SSEItem = SSEEvent | Raw | Pause | Drop


@attrs.frozen
class SSEReply:
    items: tuple[SSEItem, ...]
    status: int = 200
    headers: Mapping[str, str] = attrs.field(factory=dict)
    delay: float = 0.0
    done: bool = False  # end with "data: [DONE]" as Chat Completions does


Reply = JSONReply | RawReply | SSEReply
Handler = Callable[[RecordedRequest], Reply]
Scripted = Reply | Handler


def error_reply(
    status: int, message: str, *, code: str | None = None, headers: Mapping[str, str] | None = None
) -> JSONReply:
    """An error in OpenAI's body shape."""
    kind = "invalid_request_error" if status < 500 else "server_error"
    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return JSONReply(body, status=status, headers=dict(headers or {}))


@attrs.frozen
class _Route:
    method: str
    pattern: re.Pattern[str]
    name: str
    handler: Handler


@attrs.define
class FakeOpenAIServer:
    """The server; use as a context manager or call :meth:`start` and :meth:`stop`."""

    requests: list[RecordedRequest] = attrs.field(factory=list, init=False)
    # Every reply sent, with its request: the fidelity tests check them against the SDK's types.
    replies: list[tuple[RecordedRequest, Reply]] = attrs.field(factory=list, init=False)
    _routes: list[_Route] = attrs.field(factory=list, init=False)
    _scripts: dict[str, deque[Scripted]] = attrs.field(factory=dict, init=False)
    _lock: threading.Lock = attrs.field(factory=threading.Lock, init=False)
    _stopping: threading.Event = attrs.field(factory=threading.Event, init=False)
    _connections: set[socket.socket] = attrs.field(factory=set, init=False)
    _httpd: ThreadingHTTPServer | None = attrs.field(default=None, init=False)
    _thread: threading.Thread | None = attrs.field(default=None, init=False)

    @property
    def base_url(self) -> str:
        """The URL to give the SDK (``.../v1``)."""
        assert self._httpd is not None, "the server is not started"
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def route(self, method: str, pattern: str, name: str, handler: Handler) -> None:
        """Answer ``method`` requests whose path fully matches ``pattern`` with ``handler``."""
        self._routes.append(_Route(method.upper(), re.compile(pattern), name, handler))

    def script(self, route_name: str, *replies: Scripted) -> None:
        """Answer the next requests to ``route_name`` with ``replies``, in order."""
        if not any(r.name == route_name for r in self._routes):
            raise KeyError(f"no route named {route_name!r}")
        with self._lock:
            self._scripts.setdefault(route_name, deque()).extend(replies)

    def requests_to(self, route_name: str) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.route == route_name]

    def start(self) -> FakeOpenAIServer:
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.02,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        with self._lock:
            for connection in list(self._connections):
                _shutdown(connection)
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def _dispatch(self, method: str, target: str, headers: Mapping[str, str], body: Any) -> Reply:
        request, reply = self._answer(method, target, headers, body)
        with self._lock:
            self.replies.append((request, reply))
        return reply

    def _answer(
        self, method: str, target: str, headers: Mapping[str, str], body: Any
    ) -> tuple[RecordedRequest, Reply]:
        url = urlsplit(target)
        query = parse_qs(url.query)
        for route in self._routes:
            match = route.pattern.fullmatch(url.path)
            if route.method == method and match:
                request = RecordedRequest(
                    method, url.path, query, headers, body, route.name, match.groupdict()
                )
                with self._lock:
                    self.requests.append(request)
                    queue = self._scripts.get(route.name)
                    scripted = queue.popleft() if queue else None
                if scripted is None:
                    return request, route.handler(request)
                if isinstance(scripted, JSONReply | RawReply | SSEReply):
                    return request, scripted
                return request, scripted(request)
        request = RecordedRequest(method, url.path, query, headers, body)
        with self._lock:
            self.requests.append(request)
        return request, error_reply(404, f"no route for {method} {url.path}")


def _shutdown(connection: socket.socket) -> None:
    with contextlib.suppress(OSError):
        connection.shutdown(socket.SHUT_RDWR)


def _make_handler(server: FakeOpenAIServer) -> type[BaseHTTPRequestHandler]:
    from fakeopenai.wire import write_reply  # noqa: PLC0415 -- keeps the HTTP plumbing apart

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = 10  # an idle keep-alive connection ends its thread

        def setup(self) -> None:
            super().setup()
            # Events go out as small writes: without this, Nagle's algorithm and
            # delayed ACKs add tens of milliseconds to every stream.
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with server._lock:
                server._connections.add(self.connection)

        def finish(self) -> None:
            with server._lock:
                server._connections.discard(self.connection)
            with contextlib.suppress(OSError):
                super().finish()

        def handle_one_request(self) -> None:
            try:
                super().handle_one_request()
            except OSError:
                self.close_connection = True

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                write_reply(self, error_reply(413, "body too large"), server._stopping)
                return
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = raw.decode("utf-8", "replace")
            headers = {k.lower(): v for k, v in self.headers.items()}
            reply = server._dispatch(self.command, self.path, headers, body)
            write_reply(self, reply, server._stopping)

        do_GET = do_POST = do_DELETE = _serve  # noqa: N815 -- BaseHTTPRequestHandler's names

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass  # keep test output quiet

    return Handler
