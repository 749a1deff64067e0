"""Assistants-API threads as conversations: their metadata, their messages, the remote assistant."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from assistant_service.adapters.llm.openai._metadata import (
    ASSISTANT_KEY,
    metadata_strings,
    tagged_metadata,
)
from assistant_service.adapters.llm.openai._replies import field, text_field, time_field
from assistant_service.adapters.llm.openai.assistants._runs import BACKEND
from assistant_service.domain.errors import UpstreamError
from assistant_service.domain.models import AssistantProfile, Conversation, Message, Role


def remote_id(profile: AssistantProfile) -> str:
    """The remote assistant a profile runs.

    Raises ``UpstreamError`` (a 502, like a remote assistant the server no
    longer knows) when it names none: the service starts only once its
    profiles have one, so this is a profile stored since, never pushed.
    """
    if not profile.remote_id:
        raise UpstreamError(
            f"assistant {profile.id!r} has no remote assistant (no remote_id): push it "
            f"with assistant-service assistants push --backend assistants, "
            "or set ASSISTANTS_AUTO_PUSH=true"
        )
    return profile.remote_id


def thread_metadata(profile: AssistantProfile, metadata: Mapping[str, str]) -> dict[str, str]:
    """The metadata of a new thread: the caller's, plus our assistant id.

    Raises ``InvalidInputError`` (field ``metadata``) past the API's pair limit,
    before any call: the server's 400 would read as an upstream failure.
    """
    return tagged_metadata(profile.id, metadata)


def thread_conversation(thread: Any, default_assistant_id: str | None) -> Conversation:
    """A created or retrieved thread as a conversation; without our metadata it is the default's.

    Raises ``MalformedEventError`` for a thread without a string id.
    """
    thread_id = text_field(thread, "id", backend=BACKEND, what="thread")
    metadata = metadata_strings(field(thread, "metadata"))
    assistant_id = metadata.pop(ASSISTANT_KEY, None) or default_assistant_id or ""
    return Conversation(thread_id, assistant_id, time_field(thread, "created_at"), metadata)


def listed_message(item: Any) -> Message | None:  # its caller catches the wrong shapes
    """A listed thread message as ours; ``None`` for one without text (an image, a file)."""
    text = "".join(block.text.value for block in item.content if block.type == "text")
    return Message(Role(item.role), text) if text else None
