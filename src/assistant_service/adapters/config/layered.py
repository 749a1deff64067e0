"""Profiles from two repositories: one laid over the other (``ASSISTANT_ID=asst_...`` over the bucket)."""

from __future__ import annotations

import builtins

import attrs

from assistant_service.domain.errors import NotFoundError
from assistant_service.domain.models import AssistantProfile
from assistant_service.ports.config import AssistantConfigRepository


@attrs.define
class LayeredConfigRepository:
    """``over``'s profiles, then ``under``'s: a profile in both is ``over``'s.

    ``put`` writes to ``under`` (where profiles are kept); ``over`` holds
    profiles made at start-up, e.g. a remote assistant read from the server.
    """

    over: AssistantConfigRepository
    under: AssistantConfigRepository

    async def get(self, assistant_id: str) -> AssistantProfile:
        try:
            return await self.over.get(assistant_id)
        except NotFoundError:
            return await self.under.get(assistant_id)

    async def list(self) -> builtins.list[AssistantProfile]:
        profiles = {p.id: p for p in await self.under.list()}
        profiles.update((p.id, p) for p in await self.over.list())
        return [profiles[key] for key in sorted(profiles)]

    async def put(self, profile: AssistantProfile) -> None:
        await self.under.put(profile)
