"""The assistant-config port."""

from __future__ import annotations

from typing import Protocol

from assistant_service.domain.models import AssistantProfile


class AssistantConfigRepository(Protocol):
    """Where assistant profiles live (memory, a directory, a bucket).

    ``get`` raises ``NotFoundError`` for an unknown id and ``ConfigurationError``
    for a stored profile that is not valid.
    """

    async def get(self, assistant_id: str) -> AssistantProfile:
        """Return the profile with this id."""
        ...

    async def list(self) -> list[AssistantProfile]:
        """Every profile, sorted by id."""
        ...

    async def put(self, profile: AssistantProfile) -> None:
        """Create or replace the profile with ``profile.id``."""
        ...
