"""What every state store does alike: the JSON form of conversations, items and runs, lease checks.

Every store keeps items as the same JSON text and words lease errors the same
way, so a history moved between stores reads back alike.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import cattrs

from assistant_service.adapters.json_text import dumps_text, loads
from assistant_service.domain.errors import ConflictError, InvalidInputError, LeaseLostError
from assistant_service.domain.leases import Lease
from assistant_service.domain.models import Conversation
from assistant_service.domain.runs import RunRecord

# Run records as JSON: attrs classes as objects, enums as their values, tuples as lists.
_RUNS = cattrs.Converter()


def encode_item(item: Mapping[str, Any]) -> str:
    """``item`` as compact JSON; ``InvalidInputError`` for what JSON cannot hold."""
    try:
        return dumps_text(item)
    except (TypeError, ValueError) as error:
        raise InvalidInputError(f"conversation items must be JSON: {error}") from None


def decode_items(texts: Sequence[str] | Sequence[bytes]) -> list[Mapping[str, Any]]:
    """Items back from their JSON texts (one parse for the whole history)."""
    if not texts:
        return []
    joined = b",".join(t if isinstance(t, bytes) else t.encode() for t in texts)
    decoded: list[Mapping[str, Any]] = loads(b"[" + joined + b"]")
    return decoded


def encode_conversation(conversation: Conversation) -> str:
    return dumps_text(
        {
            "id": conversation.id,
            "assistant_id": conversation.assistant_id,
            # isoformat keeps the offset (or its absence) and the microseconds: an exact round trip.
            "created_at": conversation.created_at.isoformat(),
            "metadata": dict(conversation.metadata),
        }
    )


def decode_conversation(text: str | bytes) -> Conversation:
    fields = loads(text)
    return Conversation(
        id=fields["id"],
        assistant_id=fields["assistant_id"],
        created_at=datetime.fromisoformat(fields["created_at"]),
        metadata=fields["metadata"],
    )


def encode_events(events: Sequence[Mapping[str, Any]]) -> list[tuple[int, str]]:
    """Each event's ``seq`` and JSON; ``InvalidInputError`` for a batch a run log cannot take.

    Every event needs an integer ``seq``, rising through the batch; the text is
    :func:`encode_item`'s. All are checked before a store writes any.
    """
    encoded: list[tuple[int, str]] = []
    for event in events:
        text = encode_item(event)
        seq = event.get("seq")
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
            raise InvalidInputError(f"a run event needs a positive integer seq, got {seq!r}")
        if encoded and seq <= encoded[-1][0]:
            raise InvalidInputError(
                f"run events must come in seq order: {seq} after {encoded[-1][0]}"
            )
        encoded.append((seq, text))
    return encoded


def encode_run(record: RunRecord) -> str:
    return dumps_text(_RUNS.unstructure(record))


def decode_run(text: str | bytes) -> RunRecord:
    return _RUNS.structure(loads(text), RunRecord)


def check_ttl(ttl: float) -> None:
    """Refuse a lease time that is not a positive number of seconds."""
    if not ttl > 0:
        raise InvalidInputError(f"a lease's ttl must be positive, got {ttl!r}")


def check_fence(conversation_id: str, fence: Lease) -> None:
    """Refuse a lease on another conversation as a fence (a caller's mistake)."""
    if fence.conversation_id != conversation_id:
        raise InvalidInputError(
            f"a lease on {fence.conversation_id!r} cannot fence {conversation_id!r}"
        )


def conflict(conversation_id: str) -> ConflictError:
    return ConflictError(f"conversation {conversation_id!r} has a run active already")


def lease_lost(lease: Lease) -> LeaseLostError:
    return LeaseLostError(f"run {lease.holder!r} lost its lease on {lease.conversation_id!r}")


def fenced_out(lease: Lease) -> LeaseLostError:
    return LeaseLostError(
        f"run {lease.holder!r} lost its lease on {lease.conversation_id!r}: nothing was written"
    )
