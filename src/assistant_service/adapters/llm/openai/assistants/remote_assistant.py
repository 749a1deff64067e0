"""Create or update an OpenAI Assistants-API assistant from a profile (``assistants push``).

Only for the legacy Assistants backend: the remote assistant carries the model,
instructions and tool schemas, and the profile records its id in ``remote_id``.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import openai

from assistant_service.adapters.llm.openai._errors import translate_openai_errors
from assistant_service.adapters.llm.openai._tools import function_tools
from assistant_service.domain.errors import NotFoundError
from assistant_service.domain.models import AssistantProfile
from assistant_service.domain.tools import ToolSpec


def sync_remote_assistant(
    client: openai.OpenAI, profile: AssistantProfile, tools: Sequence[ToolSpec]
) -> str:
    """Create the remote assistant, or update the one ``profile.remote_id`` names; return its id.

    A ``remote_id`` the server no longer knows gets a new assistant. Raises
    ``ConfigurationError`` for a rejected key, ``UpstreamUnavailableError`` when
    the server cannot be reached and ``UpstreamError`` for other refusals.
    """
    body: dict[str, Any] = {
        "model": profile.model,
        "name": profile.id,
        "instructions": profile.instructions,
        "tools": function_tools(tools),
        "metadata": {"assistant_service_id": profile.id},
    }
    if profile.temperature is not None:
        body["temperature"] = profile.temperature
    where = f"remote assistant for {profile.id!r}"
    with translate_openai_errors(key_refused=where), warnings.catch_warnings():
        # The SDK marks the Assistants API deprecated; this backend uses it on purpose.
        warnings.simplefilter("ignore", DeprecationWarning)
        if profile.remote_id:
            try:
                with translate_openai_errors(("remote assistant", profile.remote_id)):
                    return client.beta.assistants.update(profile.remote_id, **body).id
            except NotFoundError:
                pass  # deleted upstream: make a new one
        return client.beta.assistants.create(**body).id
