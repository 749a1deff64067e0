"""Leases: one run at a time per conversation, across every instance of the service."""

from __future__ import annotations

from typing import Any

import attrs


def _positive(_instance: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if value <= 0:
        raise ValueError(f"{attribute.name} must be positive, got {value!r}")


@attrs.frozen
class Lease:
    """A run's hold on a conversation, granted by a ``RunLock`` for ``ttl`` seconds.

    ``token`` is the fencing token: each grant for a conversation gets a higher
    one than every grant before it, and none is given twice, even after a
    release or an expiry. A write fenced with a lease is refused once a later
    grant exists, so a run that lost its lease (paused, partitioned) cannot
    overwrite the work of the run that took over.
    """

    conversation_id: str
    holder: str
    token: int
    ttl: float = attrs.field(validator=_positive)
