"""The one-time-token port: values each taken at most once, from any instance, before they expire.

The edge keeps its WebSocket tickets here: ``POST /ws-tickets`` may be served
by one instance and the socket opened on another, so a ticket must be
redeemable (once) wherever the load balancer sends the client. Its shared
adapters are Redis and Firestore; the in-memory one serves a single process.
"""

from __future__ import annotations

from typing import Protocol


class OneTimeTokens(Protocol):
    """Single-use values under opaque keys, each kept ``ttl`` seconds at most.

    Give a digest of a secret token as the key, never the token itself: the
    store then holds nothing (in a dump, a backup, a replica) that opens
    anything. A shared store raises ``StateStoreUnavailableError`` when it
    cannot be reached.
    """

    async def put_token(self, key: str, value: str, ttl: float) -> None:
        """Keep ``value`` under ``key`` for ``ttl`` seconds, replacing what was there.

        Raises ``InvalidInputError`` for a ``ttl`` that is not positive.
        """
        ...

    async def take_token(self, key: str) -> str | None:
        """The value under ``key``, forgotten in the same step; ``None`` if unknown, taken or expired.

        Of concurrent takers (on any instances) one gets the value, the others ``None``.
        """
        ...
