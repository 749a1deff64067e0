"""Create or update an OpenAI Assistants-API assistant from a profile (``assistants push``).

Only for the legacy Assistants backend: the remote assistant carries the model,
instructions and tool schemas, and the profile records its id in ``remote_id``.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import openai

from assistant_service.adapters.tools import to_wire_name
from assistant_service.domain.errors import (
    ConfigurationError,
    UpstreamError,
    UpstreamUnavailableError,
)
from assistant_service.domain.models import AssistantProfile
from assistant_service.domain.tools import ToolSpec


def assistants_tool(spec: ToolSpec) -> dict[str, Any]:
    """``spec`` as an Assistants-API function tool (wire-safe name)."""
    return {
        "type": "function",
        "function": {
            "name": to_wire_name(spec.name),
            "description": spec.description,
            "parameters": dict(spec.parameters),
            "strict": spec.strict,
        },
    }


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
        "tools": [assistants_tool(spec) for spec in tools],
        "metadata": {"assistant_service_id": profile.id},
    }
    if profile.temperature is not None:
        body["temperature"] = profile.temperature
    with _translated(profile.id), warnings.catch_warnings():
        # The SDK marks the Assistants API deprecated; this backend uses it on purpose.
        warnings.simplefilter("ignore", DeprecationWarning)
        if profile.remote_id:
            try:
                return client.beta.assistants.update(profile.remote_id, **body).id
            except openai.NotFoundError:
                pass
        return client.beta.assistants.create(**body).id


@contextmanager
def _translated(assistant_id: str) -> Iterator[None]:
    where = f"remote assistant for {assistant_id!r}"
    try:
        yield
    except (openai.AuthenticationError, openai.PermissionDeniedError) as e:
        raise ConfigurationError(
            f"{where}: the server refused the API key ({e.status_code}); check OPENAI_API_KEY"
        ) from None
    except (openai.APIConnectionError, openai.RateLimitError, openai.InternalServerError) as e:
        raise UpstreamUnavailableError(f"{where}: server unavailable ({e})") from None
    except openai.APIStatusError as e:
        raise UpstreamError(f"{where}: the server answered {e.status_code}: {e.message}") from None
