"""The run-state ports: state that one run on one instance leaves for the next.

Cloud Run starts and stops instances at will, so what must outlive a request
lives behind these ports: the one-run-per-conversation lease, the tool calls
a step left unanswered, each run's record and events, and requests to cancel.
Their shared adapters are Redis and Firestore; the in-memory one serves a
single process.

A shared store raises ``StateStoreUnavailableError`` from any method when it
cannot be reached.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from assistant_service.domain.leases import Lease
from assistant_service.domain.runs import RunRecord
from assistant_service.ports.conversations import ConversationStore, StateStoreHealth
from assistant_service.ports.tokens import OneTimeTokens


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


class RunEventLog(Protocol):
    """Each run's events in order, readable from every instance while it runs and a while after.

    Events are JSON-compatible mappings, each with its ``seq`` (1, 2, 3... per
    run); the run's one writer appends them in order. A resumed stream reads
    what it missed, then waits for what comes next.
    """

    async def append_events(self, run_id: str, events: Sequence[Mapping[str, Any]]) -> None:
        """Add ``events`` (in ``seq`` order, following the last one) at the end of the run's log."""
        ...

    async def read_events(
        self, run_id: str, after: int = 0, *, wait: float = 0.0, limit: int = 1000
    ) -> list[Mapping[str, Any]]:
        """Up to ``limit`` events whose ``seq`` is above ``after``, oldest first.

        When there are none yet and ``wait`` is positive, wait up to ``wait``
        seconds for the next ones; ``[]`` when none came (or the run is unknown).
        """
        ...

    async def expire_events(self, run_id: str, ttl: float) -> None:
        """Forget the run's events ``ttl`` seconds from now (the run ended)."""
        ...


class RunRegistry(Protocol):
    """What every instance knows of each run, and the requests to cancel one.

    Writes to one run's record happen under its conversation's lease (one
    writer at a time), so a record needs no compare-and-set.
    """

    async def save_run(self, record: RunRecord, ttl: float) -> None:
        """Store ``record`` (replacing the run's last one) for ``ttl`` seconds.

        It also becomes its conversation's latest run (:meth:`latest_run`).
        """
        ...

    async def load_run(self, run_id: str) -> RunRecord:
        """The run's record; ``NotFoundError`` for an unknown or expired run."""
        ...

    async def latest_run(self, conversation_id: str) -> RunRecord | None:
        """The record of the conversation's latest run, if it is still kept."""
        ...

    async def request_cancel(self, run_id: str, ttl: float) -> None:
        """Ask the run to stop; the request is kept ``ttl`` seconds."""
        ...

    async def cancel_requested(self, run_id: str) -> bool:
        """Whether someone asked the run to stop."""
        ...


class RunState(RunLock, RunEventLog, RunRegistry, Protocol):
    """What the facade needs to run, steer and replay runs across instances."""


class StateStore(
    ConversationStore, PendingCalls, RunState, OneTimeTokens, StateStoreHealth, Protocol
):
    """Every port of shared state in one store: what the composition root wires.

    One object serves them all because a fenced append must see the lock's
    tokens. Its adapters: in memory, Redis and Firestore.
    """
