"""A fake OpenAI server on 127.0.0.1 that the real ``openai`` SDK talks to.

``FakeOpenAI`` is the HTTP server (:mod:`fakeopenai.server`) with every API
module installed; each module adds its routes and keeps its own state:

- :mod:`fakeopenai.responses`: ``/v1/responses`` and ``/v1/conversations``
  (``fake.responses``; scripted turns from :mod:`fakeopenai.turns`).

To add an API (Assistants, Chat Completions): write a module with a class whose
``install(server) -> state`` registers routes with ``server.route(method,
pattern, name, handler)`` and returns its state object, then add one line to
:func:`start_fake_openai` (the state becomes an attribute of ``FakeOpenAI``).
SSE streams are built from :class:`SSEEvent` / :class:`Raw` / :class:`Pause` /
:class:`Drop` items in an :class:`SSEReply`; ``server.script(name, *replies)``
overrides any route for the next requests (errors, slow answers).
"""

from __future__ import annotations

from typing import Any

import attrs

from fakeopenai import assistants, chat
from fakeopenai.responses import ResponsesFake
from fakeopenai.server import (
    Drop,
    FakeOpenAIServer,
    JSONReply,
    Pause,
    Raw,
    RawReply,
    RecordedRequest,
    SSEEvent,
    SSEReply,
    error_reply,
)
from fakeopenai.wire import encode_event, event

API_KEY = "sk-test-fake-0123456789abcdef"


@attrs.define
class FakeOpenAI(FakeOpenAIServer):
    """The server with every API module installed; modules' states are attributes."""

    responses: ResponsesFake = attrs.field(init=False)
    extensions: dict[str, Any] = attrs.field(factory=dict, init=False)


def start_fake_openai() -> FakeOpenAI:
    """A started server with every API installed; call ``stop()`` when done."""
    fake = FakeOpenAI()
    fake.responses = ResponsesFake.install(fake)
    fake.extensions["assistants"] = assistants.install(fake)
    fake.extensions["chat"] = chat.install(fake)
    return fake.start()  # type: ignore[return-value]


__all__ = [
    "API_KEY",
    "Drop",
    "FakeOpenAI",
    "FakeOpenAIServer",
    "JSONReply",
    "Pause",
    "Raw",
    "RawReply",
    "RecordedRequest",
    "ResponsesFake",
    "SSEEvent",
    "SSEReply",
    "encode_event",
    "error_reply",
    "event",
    "start_fake_openai",
]
