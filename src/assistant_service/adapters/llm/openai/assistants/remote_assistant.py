"""Remote Assistants-API assistants: push one from a profile, or run one as the server has it.

Only for the legacy Assistants backend. :func:`push_remote_assistant` creates or
updates the remote assistant of a profile (``assistants push``, and start-up
with ``ASSISTANTS_AUTO_PUSH``); :func:`retrieve_remote_assistant` reads an
existing one (``ASSISTANT_ID=asst_...``) into a profile whose tools are the
local functions its function tools name.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

import attrs
from openai import AsyncOpenAI

from assistant_service.adapters.llm.openai._errors import translate_openai_errors
from assistant_service.adapters.llm.openai._tools import function_tools
from assistant_service.adapters.llm.openai.assistants._legacy_sdk import deprecated_api
from assistant_service.adapters.tools.naming import SEPARATOR, from_wire_name
from assistant_service.domain.errors import ConfigurationError, NotFoundError
from assistant_service.domain.models import AssistantProfile
from assistant_service.domain.tools import ToolSpec

# The metadata key that ties a remote assistant to the profile it was pushed from.
PROFILE_KEY = "assistant_service_id"
# Remote assistants listed while looking for a profile's: more is a server we do not own.
MAX_LISTED = 1_000


@attrs.frozen
class RemoteAssistant:
    """A remote assistant as the server has it, and the local tools it calls.

    ``profile`` has the remote id as its id and ``remote_id``, the server's
    model, instructions and temperature, and the local tool names.
    ``tool_names`` maps each name the model calls (``from_wire_name`` of the
    remote function's name) to the local tool it runs.
    """

    profile: AssistantProfile
    tool_names: Mapping[str, str]


async def push_remote_assistant(
    client: AsyncOpenAI, profile: AssistantProfile, tools: Sequence[ToolSpec]
) -> str:
    """Create or update the remote assistant of ``profile``; return its id.

    The one ``profile.remote_id`` names is updated; without one (or when the
    server no longer knows it), the assistant whose metadata names the profile
    is updated, else a new one is created: pushing twice never makes two.
    Raises ``ConfigurationError`` for a rejected key, ``UpstreamUnavailableError``
    when the server cannot be reached and ``UpstreamError`` for other refusals.
    """
    body: dict[str, Any] = {
        "model": profile.model,
        "name": profile.id,
        "instructions": profile.instructions,
        "tools": function_tools(tools),
        "metadata": {PROFILE_KEY: profile.id},
    }
    if profile.temperature is not None:
        body["temperature"] = profile.temperature
    assistants = client.beta.assistants
    with translate_openai_errors(key_refused=f"remote assistant for {profile.id!r}"):
        known = profile.remote_id or await _pushed_before(client, profile.id)
        if known:
            with deprecated_api():
                pending = assistants.update(known, **body)
            try:
                with translate_openai_errors(("remote assistant", known)):
                    return (await pending).id
            except NotFoundError:
                pass  # deleted upstream: make a new one
        with deprecated_api():
            created = assistants.create(**body)
        return (await created).id


async def _pushed_before(client: AsyncOpenAI, profile_id: str) -> str | None:
    with deprecated_api():
        pending = client.beta.assistants.list(limit=100, order="desc")
    # Page by page, not ``async for``: leaving that early leaves its generator open.
    page = await pending
    seen = 0
    while True:
        for assistant in page.data:
            if (assistant.metadata or {}).get(PROFILE_KEY) == profile_id:
                return assistant.id
        seen += len(page.data)
        if seen >= MAX_LISTED or not page.has_next_page():
            return None
        page = await page.get_next_page()


async def retrieve_remote_assistant(
    client: AsyncOpenAI, assistant_id: str, local_tools: Collection[str]
) -> RemoteAssistant:
    """The remote assistant ``assistant_id``, its function tools matched to ``local_tools``.

    Raises ``ConfigurationError`` (one line) for an assistant the server does
    not know, a rejected key, or function tools no local tool matches (named);
    ``UpstreamUnavailableError`` when the server cannot be reached.
    """
    with deprecated_api():
        pending = client.beta.assistants.retrieve(assistant_id)
    try:
        with translate_openai_errors(
            ("remote assistant", assistant_id), key_refused=f"ASSISTANT_ID={assistant_id}"
        ):
            assistant = await pending
    except NotFoundError:
        raise ConfigurationError(
            f"ASSISTANT_ID={assistant_id}: the server knows no such assistant "
            "(check ASSISTANT_ID, OPENAI_API_KEY's organisation and OPENAI_BASE_URL)"
        ) from None
    remote = [t.function.name for t in assistant.tools or () if t.type == "function"]
    names = match_tools(assistant_id, remote, local_tools)
    profile = AssistantProfile(
        id=assistant_id,
        model=assistant.model,
        instructions=assistant.instructions or "",
        tools=tuple(dict.fromkeys(names.values())),
        temperature=assistant.temperature,
        remote_id=assistant_id,
    )
    return RemoteAssistant(profile=profile, tool_names=names)


def match_tools(assistant_id: str, remote: Sequence[str], local: Collection[str]) -> dict[str, str]:
    """Map each remote function name to a local tool; ``ConfigurationError`` naming the rest.

    ``weather__get_forecast`` is ``weather.get_forecast``; a name without a
    namespace (``get_forecast``, as the original service named them) is the one
    local tool of that name, one outside the ``demo`` namespace when there are several.
    """
    names: dict[str, str] = {}
    unknown: list[str] = []
    ambiguous: list[str] = []
    for wire in remote:
        called = from_wire_name(wire)
        if called in local:
            names[called] = called
            continue
        found = [n for n in local if n.partition(SEPARATOR)[2] == called]
        if len(found) > 1:
            found = [n for n in found if not n.startswith(f"demo{SEPARATOR}")]
        if len(found) == 1:
            names[called] = found[0]
        elif found:
            ambiguous.append(f"{wire} ({' or '.join(sorted(found))})")
        else:
            unknown.append(wire)
    if unknown or ambiguous:
        problems = []
        if unknown:
            problems.append(f"no local tool for {', '.join(unknown)} (add it to ASSISTANTS_DIR)")
        if ambiguous:
            problems.append(f"ambiguous: {', '.join(ambiguous)}")
        raise ConfigurationError(
            f"remote assistant {assistant_id}'s function tools: " + "; ".join(problems)
        )
    return names
