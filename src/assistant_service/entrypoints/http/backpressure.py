"""Backpressure for WebSocket frames: Quart's inbound queue, bounded.

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
import logging

import anyio
from hypercorn.typing import ASGIReceiveCallable, WebsocketScope
from quart import Quart
from quart.asgi import ASGIWebsocketConnection
from quart.signals import websocket_received

log = logging.getLogger(__name__)

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
                    log.warning("dropping websocket frames: the client sends but does not read")
                    dropping = True
            elif event["type"] == "websocket.disconnect":
                return
