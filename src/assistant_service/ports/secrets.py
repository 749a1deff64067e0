"""The secrets port."""

from __future__ import annotations

from typing import Protocol

from assistant_service.domain.secrets import Secret


class SecretRepository(Protocol):
    """Where secrets come from (memory, the environment, Secret Manager).

    ``get`` raises ``NotFoundError`` naming the secret, never its value.
    """

    async def get(self, name: str) -> Secret:
        """Return the secret called ``name``."""
        ...
