"""Bounds on what clients send: WebSocket frames queued, request bodies buffered.

WebSocket frames: Quart's inbound queue, bounded.

Quart copies each received frame from the server into a queue of its own,
which has no bound: a client that floods frames and never reads the answers
stalls the socket's handler on sending, while Quart keeps reading and queuing
frames in memory without limit. With the queue bounded, Quart stops reading
when it is full, so does Hypercorn (its own queue is bounded), and TCP pushes
back on the client.

Frames that wait too long for room are dropped, until there is room again. It
must be so: Hypercorn hands over a disconnect through the same queues, so a
client that vanishes while they are full would leave its handler blocked (on
sending to it) until shutdown. Only a client that floods frames without
reading its answers for that long loses frames.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, cast

import anyio
import structlog
from hypercorn.typing import ASGIReceiveCallable, WebsocketScope
from quart import Quart
from quart.asgi import ASGIWebsocketConnection
from quart.signals import websocket_received
from quart.wrappers import Request
from quart.wrappers.websocket import Websocket
from werkzeug.exceptions import RequestEntityTooLarge

log = structlog.get_logger(__name__)

# Frames waiting for the handler; each is at most Hypercorn's frame limit.
MAX_QUEUED_FRAMES = 8
# A client whose frames wait this long for room is not reading its answers;
# its frames are dropped while the queue stays full (the app's config key of
# the same name overrides it).
FULL_QUEUE_SECONDS = 5.0


class BoundedWebsocketConnection(ASGIWebsocketConnection):
    """Quart's WebSocket connection with at most ``MAX_QUEUED_FRAMES`` frames queued."""

    def __init__(self, app: Quart, scope: WebsocketScope) -> None:
        super().__init__(app, scope)
        self.queue = asyncio.Queue(maxsize=MAX_QUEUED_FRAMES)

    async def handle_messages(self, receive: ASGIReceiveCallable) -> None:
        # Quart's loop (0.22), with a bounded wait for room.
        patience = float(self.app.config.get("FULL_QUEUE_SECONDS", FULL_QUEUE_SECONDS))
        dropping = False
        while True:
            event = await receive()
            if event["type"] == "websocket.receive":
                message = event.get("bytes") or event["text"]
                await websocket_received.send_async(message)
                if dropping and self.queue.full():
                    continue
                dropping = False
                with anyio.move_on_after(patience) as waited:
                    await self.queue.put(message)
                if waited.cancelled_caught:
                    log.warning(
                        "websocket.frames_dropped", reason="the client sends but does not read"
                    )
                    dropping = True
            elif event["type"] == "websocket.disconnect":
                return


class _BoundedBuffer:
    """Quart 0.23+'s frame buffer with at most ``MAX_QUEUED_FRAMES`` frames, dropping late ones."""

    app: Quart  # set by bound_websocket_frames: its config may change the patience

    def __init__(self) -> None:
        super().__init__()
        self._queue: asyncio.Queue[bytes | str] = asyncio.Queue(maxsize=MAX_QUEUED_FRAMES)
        self._dropping = False

    async def put(self, data: bytes | str) -> None:
        if self._dropping and self._queue.full():
            return
        self._dropping = False
        patience = float(self.app.config.get("FULL_QUEUE_SECONDS", FULL_QUEUE_SECONDS))
        with anyio.move_on_after(patience) as waited:
            await self._queue.put(data)
        if waited.cancelled_caught:
            log.warning("websocket.frames_dropped", reason="the client sends but does not read")
            self._dropping = True


def bound_websocket_frames(app: Quart) -> None:
    """Bound ``app``'s inbound WebSocket frames, whichever Quart version runs it.

    Quart 0.23 (Python 3.13+) buffers frames in ``Websocket.buffer_class``;
    earlier versions in the ASGI connection's own queue.
    """
    buffer_class = getattr(Websocket, "buffer_class", None)
    if buffer_class is None:
        app.asgi_websocket_class = BoundedWebsocketConnection
        return
    bounded = type("BoundedBuffer", (_BoundedBuffer, buffer_class), {"app": app})
    websocket_class = type("BoundedWebsocket", (app.websocket_class,), {"buffer_class": bounded})
    app.websocket_class = cast("type[Websocket]", websocket_class)


class _BoundedBody:
    """Quart 0.23+'s request body, refusing past its limit as the bytes arrive.

    Quart 0.23 queues a streamed (chunked) body whole, and checks its size only
    when the handler reads it: a client could make the server hold any amount.
    Earlier versions check while appending, as this does.
    """

    # Quart's Body provides these.
    _max_content_length: int | None
    _must_raise: Exception | None
    set_complete: Callable[[], None]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._received = 0

    async def put(self, data: bytes) -> None:
        if self._must_raise is not None:
            return  # refused already: drop the rest as it arrives
        self._received += len(data)
        limit = self._max_content_length
        if limit is not None and self._received > limit:
            self._must_raise = RequestEntityTooLarge()
            self.set_complete()  # wake a handler waiting for the body: it raises 413
            return
        await super().put(data)  # type: ignore[misc]


def bound_request_bodies(app: Quart) -> None:
    """Refuse a request body as soon as it passes ``MAX_CONTENT_LENGTH`` (Quart 0.23+)."""
    body_class = app.request_class.body_class
    if not hasattr(body_class, "put"):
        return  # Quart before 0.23 checks as it appends
    bounded = type("BoundedBody", (_BoundedBody, body_class), {})
    request_class = type("BoundedRequest", (app.request_class,), {"body_class": bounded})
    app.request_class = cast("type[Request]", request_class)
