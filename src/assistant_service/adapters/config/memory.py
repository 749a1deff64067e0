"""Assistant profiles in memory."""

from __future__ import annotations

from collections.abc import Iterable

import attrs

from assistant_service.domain.errors import NotFoundError
from assistant_service.domain.models import AssistantProfile


@attrs.define
class InMemoryConfigRepository:
    """Profiles in a dict; for development, embedding and tests."""

    _profiles: dict[str, AssistantProfile] = attrs.field(factory=dict, init=False)

    @classmethod
    def of(
        cls, *profiles: AssistantProfile | Iterable[AssistantProfile]
    ) -> InMemoryConfigRepository:
        """A repository holding ``profiles``."""
        repository = cls()
        for item in profiles:
            for profile in [item] if isinstance(item, AssistantProfile) else item:
                repository._profiles[profile.id] = profile
        return repository

    async def get(self, assistant_id: str) -> AssistantProfile:
        try:
            return self._profiles[assistant_id]
        except KeyError:
            raise NotFoundError("assistant", assistant_id) from None

    async def list(self) -> list[AssistantProfile]:
        return [self._profiles[key] for key in sorted(self._profiles)]

    async def put(self, profile: AssistantProfile) -> None:
        self._profiles[profile.id] = profile
