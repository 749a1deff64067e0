"""The run-state ports: state that one run on one instance leaves for the next.

Cloud Run starts and stops instances at will, so what must outlive a request
lives behind these ports: the one-run-per-conversation lease and the tool calls
a step left unanswered. Their shared adapters are Redis and Firestore; the
in-memory one serves a single process. Run events (to resume a stream) and
pending approvals will join this module as ports of their own.

A shared store raises ``StateStoreUnavailableError`` from any method when it
cannot be reached.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from assistant_service.domain.leases import Lease
from assistant_service.ports.conversations import ConversationStore, StateStoreHealth


class RunLock(Protocol):
    """One lease per conversation, with a fencing token, shared by every instance.

    A lease lapses ``ttl`` seconds after it was granted or last renewed; then
    anyone may take it over. Each grant for a conversation has a higher token
    than every grant before it. Give the lease to ``ConversationStore.append``
    as ``fence`` so that a run which lost it cannot write.
    """

    async def acquire(self, conversation_id: str, holder: str, ttl: float) -> Lease:
        """Grant ``holder`` (a run id) the conversation for ``ttl`` seconds.

        Raises ``ConflictError`` while another holder's lease is live. A lapsed
        or released lease is taken over; the same holder asking again gets a new
        lease, and the one it had stops counting.
        """
        ...

    async def renew(self, lease: Lease) -> None:
        """Extend the lease to ``lease.ttl`` seconds from now.

        Raises ``LeaseLostError`` if the lease lapsed, was released or was taken
        over: the run must stop, and acquire again if it wants to go on.
        """
        ...

    async def release(self, lease: Lease) -> None:
        """Free the conversation, if ``lease`` still holds it; otherwise do nothing."""
        ...


class PendingCalls(Protocol):
    """The tool calls a backend's last step asked for, until the next step answers them.

    The Responses backend needs them on whichever instance serves the next turn:
    calls left unanswered (a run that died, a client that left) are answered
    with an interruption notice before the model is asked again.
    """

    async def remember(self, conversation_id: str, call_ids: Sequence[str]) -> None:
        """Replace what is remembered for the conversation with ``call_ids``, in order."""
        ...

    async def take(self, conversation_id: str) -> tuple[str, ...]:
        """Return the remembered call ids and forget them, atomically; ``()`` when none."""
        ...


class StateStore(ConversationStore, RunLock, PendingCalls, StateStoreHealth, Protocol):
    """Every port of shared state in one store: what the composition root wires.

    One object serves them all because a fenced append must see the lock's
    tokens. Its adapters: in memory, Redis and Firestore.
    """
