"""Conversations, their history and run state on Firestore (the ``[firestore]`` extra).

Documents, in collections named after ``prefix``:

- ``{prefix}conversations/{id}``: the conversation as JSON, ``next_seq`` (the
  sequence number of the next item) and ``first_seq`` (where this conversation's
  items start).
- ``{prefix}conversations/{id}/items/{seq}``: one item as JSON, with its
  integer ``seq``; the id is ``seq`` zero-padded, so documents sort as items do.
- ``{prefix}leases/{id}``: the lease (``holder``, ``token``, ``expires_at``); the
  token counter is its ``token``, kept after a release.
- ``{prefix}pending_calls/{id}``: the remembered tool call ids.

And for each run:

- ``{prefix}runs/{run_id}``: the run's record as JSON (``record``).
- ``{prefix}runs/{run_id}/events/{seq}``: one event as JSON, with its integer
  ``seq``; the id is ``seq`` zero-padded.
- ``{prefix}run_logs/{run_id}``: only an ``expire_at``, when the run's events
  are gone: ``RUN_LOG_TTL`` after the last append, or as ``expire_events``
  says. Readers go by it, so ending a log is one write, not one per event.
- ``{prefix}latest_runs/{conversation_id}``: the id of the conversation's
  latest run (``run_id``).
- ``{prefix}run_cancels/{run_id}``: present while a request to cancel is kept.

And ``{prefix}one_time_tokens/{key}``: a one-time token's ``value``, deleted
by the one taker whose conditional delete lands.

Every document has an ``expire_at`` timestamp for a Firestore TTL policy: a
conversation's ``conversation_ttl`` after its last write; a run's record,
latest-run pointer, cancel request and one-time token the ttl they were written with; an
event ``RUN_LOG_TTL`` after it was written (so an event outlives a log of a
run that went on for longer, and ``expire_events`` cannot keep it past that).
Enable a policy per collection group::

    gcloud firestore fields ttls update expire_at --enable-ttl \\
        --collection-group=assistant-service-conversations   # and items, leases, pending_calls,
        # runs, events, run_logs, latest_runs, run_cancels, one_time_tokens (with their prefix
        # where they have one)

A TTL policy deletes late (within a day or so), so reads treat a document
past its ``expire_at`` as gone already. An item expires ``conversation_ttl``
after it was written: a conversation in use for longer loses its oldest items,
as a bounded history does. A lease counter deleted that way starts again from
the clock in milliseconds, above every token it gave before.

Lease times are compared with this machine's clock: instances need clocks in
step to well under a lease's ttl (Cloud Run's are).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import attrs

from assistant_service.adapters.state._common import (
    check_fence,
    check_ttl,
    conflict,
    decode_conversation,
    decode_items,
    decode_run,
    encode_conversation,
    encode_events,
    encode_item,
    encode_run,
    fenced_out,
    lease_lost,
)
from assistant_service.domain.errors import (
    ConfigurationError,
    InvalidInputError,
    NotFoundError,
    StateStoreUnavailableError,
)
from assistant_service.domain.leases import Lease
from assistant_service.domain.models import Conversation
from assistant_service.domain.runs import RunRecord

if TYPE_CHECKING:
    from google.cloud.firestore import (
        AsyncClient,
        AsyncDocumentReference,
        AsyncTransaction,
        DocumentSnapshot,
    )

T = TypeVar("T")

DEFAULT_PREFIX = "assistant-service-"
THIRTY_DAYS = 30 * 24 * 3600.0
PAGE_SIZE = 300
RUN_LOG_TTL = 24 * 3600.0
POLL_INTERVAL = 0.1  # how often a waiting read of a run's events looks again
# Writes per batch commit (Firestore takes 500 at most): an append's log document and its events.
_BATCH_SIZE = 400
_MAX_ID_BYTES = 1500


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _live(snapshot: DocumentSnapshot[Any], now: datetime) -> bool:
    """Whether a document exists and its TTL has not passed (the policy deletes late)."""
    if not snapshot.exists:
        return False
    expire_at = (snapshot.to_dict() or {}).get("expire_at")
    return expire_at is None or bool(expire_at > now)


def _document_id(identifier: str, kind: str = "conversation") -> str:
    # Firestore's rules for document ids; the ids this package makes all pass.
    if (
        not identifier
        or "/" in identifier
        or identifier in {".", ".."}
        or (identifier.startswith("__") and identifier.endswith("__"))
        or len(identifier.encode()) > _MAX_ID_BYTES
    ):
        raise InvalidInputError(f"Firestore cannot hold a {kind} id like {identifier!r}")
    return identifier


@attrs.define
class FirestoreStateStore:
    """Conversation store, run lock and pending calls on one Firestore database.

    Built from a ``google.cloud.firestore.AsyncClient``, which it then owns
    (``aclose`` closes its channel), or by :meth:`from_environment`. Every
    write runs in a transaction, tried up to ``max_attempts`` times under
    contention; one instance runs its transactions on a conversation one at a
    time, since Firestore makes contending transactions wait on each other's
    locks. Every call gives up after ``timeout`` seconds. A history keeps
    its newest ``max_items`` items. Every Firestore failure is raised as
    ``StateStoreUnavailableError``, except a write Firestore refuses as invalid
    (an item over its size limit), raised as ``InvalidInputError``.
    """

    _client: AsyncClient = attrs.field(alias="client")
    prefix: str = DEFAULT_PREFIX
    conversation_ttl: float = attrs.field(default=THIRTY_DAYS, validator=attrs.validators.gt(0))
    max_items: int = attrs.field(default=10_000, validator=attrs.validators.gt(0))
    timeout: float = attrs.field(default=10.0, validator=attrs.validators.gt(0))
    max_attempts: int = attrs.field(default=20, validator=attrs.validators.gt(0))
    # One lock per conversation with a transaction under way here, dropped when
    # nobody waits: bounded by concurrency.
    _locks: dict[str, anyio.Lock] = attrs.field(factory=dict, init=False)

    @classmethod
    def from_environment(  # noqa: PLR0913 - the store's settings, all keyword-only
        cls,
        project: str | None = None,
        database: str = "(default)",
        *,
        prefix: str = DEFAULT_PREFIX,
        conversation_ttl: float = THIRTY_DAYS,
        max_items: int = 10_000,
        timeout: float = 10.0,
    ) -> FirestoreStateStore:
        """A store on ``database`` of ``project``, with credentials from the environment.

        Application default credentials in production; with
        ``FIRESTORE_EMULATOR_HOST`` set, the client talks to that emulator
        without credentials (and ``project`` may be left out).
        """
        try:
            from google.cloud.firestore import AsyncClient  # noqa: PLC0415 - the extra, when chosen
        except ImportError as error:
            raise ConfigurationError(
                "the Firestore state store needs the firestore extra:"
                " pip install 'assistant-service[firestore]'"
            ) from error

        return cls(
            client=AsyncClient(project=project, database=database),
            prefix=prefix,
            conversation_ttl=conversation_ttl,
            max_items=max_items,
            timeout=timeout,
        )

    async def aclose(self) -> None:
        """Close the client's channel, if it opened one."""
        # The Firestore client has no close of its own; its GAPIC client's
        # transport owns the channel, made on first use.
        api = self._client._firestore_api_internal  # noqa: SLF001
        if api is not None:
            await api.transport.close()

    # ConversationStore

    async def create(self, conversation: Conversation) -> None:
        reference = self._conversation(conversation.id)
        record = encode_conversation(conversation)

        async def create(transaction: AsyncTransaction) -> None:
            snapshot = await self._read(reference, transaction)
            now = _now()
            if _live(snapshot, now):
                raise InvalidInputError(f"conversation {conversation.id!r} exists already")
            # A lapsed one the TTL policy has not deleted yet may have items left:
            # the new conversation's start after them.
            start = int(snapshot.get("next_seq")) if snapshot.exists else 0
            transaction.set(
                reference,
                {
                    "conversation": record,
                    "first_seq": start,
                    "next_seq": start,
                    "expire_at": self._expiry(now),
                },
            )

        with self._unavailable():
            await self._transaction(conversation.id, create)

    async def get(self, conversation_id: str) -> Conversation:
        reference = self._conversation(conversation_id)
        with self._unavailable():
            snapshot = await self._read(reference)
        if not _live(snapshot, _now()):
            raise NotFoundError("conversation", conversation_id)
        return decode_conversation(snapshot.get("conversation"))

    async def append(
        self,
        conversation_id: str,
        items: Sequence[Mapping[str, Any]],
        *,
        fence: Lease | None = None,
    ) -> None:
        if fence is not None:
            check_fence(conversation_id, fence)
        texts = [encode_item(item) for item in items]
        reference = self._conversation(conversation_id)
        lease_reference = self._lease(conversation_id)

        async def append(transaction: AsyncTransaction) -> None:
            snapshot = await self._read(reference, transaction)
            now = _now()
            if not _live(snapshot, now):
                raise NotFoundError("conversation", conversation_id)
            if fence is not None:
                lease = await self._read(lease_reference, transaction)
                # A store fences against its own grants: with none on record, none came later.
                if lease.exists and lease.get("token") != fence.token:
                    raise fenced_out(fence)
            first = int(snapshot.get("next_seq"))
            expire_at = self._expiry(now)
            for seq, text in enumerate(texts, start=first):
                transaction.set(
                    reference.collection("items").document(f"{seq:012d}"),
                    {"seq": seq, "item": text, "expire_at": expire_at},
                )
            transaction.update(reference, {"next_seq": first + len(texts), "expire_at": expire_at})

        with self._unavailable():
            await self._transaction(conversation_id, append)

    async def items(self, conversation_id: str) -> list[Mapping[str, Any]]:
        from google.cloud.firestore import FieldFilter  # noqa: PLC0415 - loaded with the client

        reference = self._conversation(conversation_id)
        texts: list[str] = []
        with self._unavailable():
            snapshot = await self._read(reference)
            now = _now()
            if not _live(snapshot, now):
                raise NotFoundError("conversation", conversation_id)
            # Items below next_seq were written with it, in one transaction: reading
            # up to it gives the history as it was when the conversation was read.
            end = int(snapshot.get("next_seq"))
            start = max(int(snapshot.get("first_seq")), end - self.max_items)
            while start < end:
                page = (
                    await reference.collection("items")
                    .where(filter=FieldFilter("seq", ">=", start))
                    .where(filter=FieldFilter("seq", "<", end))
                    .order_by("seq")
                    .limit(PAGE_SIZE)
                    .get(timeout=self.timeout)
                )
                if not page:
                    break
                texts.extend(item.get("item") for item in page if _live(item, now))
                start = int(page[-1].get("seq")) + 1
        return decode_items(texts)

    # StateStoreHealth

    async def ping(self) -> None:
        # One read of a document that need not exist: the cheapest round trip.
        reference = self._client.collection(f"{self.prefix}health").document("ping")
        with self._unavailable():
            await self._read(reference)

    # RunLock

    async def acquire(self, conversation_id: str, holder: str, ttl: float) -> Lease:
        check_ttl(ttl)
        reference = self._lease(conversation_id)

        async def acquire(transaction: AsyncTransaction) -> int:
            snapshot = await self._read(reference, transaction)
            now = _now()
            if snapshot.exists:
                held_by = snapshot.get("holder")
                if held_by is not None and held_by != holder and snapshot.get("expires_at") > now:
                    raise conflict(conversation_id)
                token = int(snapshot.get("token")) + 1
            else:
                # A first grant, or the counter's document expired: start above any token it gave.
                token = int(now.timestamp() * 1000)
            transaction.set(
                reference,
                {
                    "holder": holder,
                    "token": token,
                    "expires_at": now + timedelta(seconds=ttl),
                    "expire_at": self._expiry(now),
                },
            )
            return token

        with self._unavailable():
            token = await self._transaction(conversation_id, acquire)
        return Lease(conversation_id, holder, token, ttl)

    async def renew(self, lease: Lease) -> None:
        reference = self._lease(lease.conversation_id)

        async def renew(transaction: AsyncTransaction) -> None:
            snapshot = await self._read(reference, transaction)
            now = _now()
            if not _holds(snapshot, lease, now):
                raise lease_lost(lease)
            transaction.update(
                reference,
                {"expires_at": now + timedelta(seconds=lease.ttl), "expire_at": self._expiry(now)},
            )

        with self._unavailable():
            await self._transaction(lease.conversation_id, renew)

    async def release(self, lease: Lease) -> None:
        reference = self._lease(lease.conversation_id)

        async def release(transaction: AsyncTransaction) -> None:
            snapshot = await self._read(reference, transaction)
            if _holds(snapshot, lease, _now()):
                # The token stays: it is the counter the next grant goes on from.
                transaction.update(reference, {"holder": None})

        with self._unavailable():
            await self._transaction(lease.conversation_id, release)

    # PendingCalls

    async def remember(self, conversation_id: str, call_ids: Sequence[str]) -> None:
        reference = self._pending(conversation_id)
        with self._unavailable():
            if call_ids:
                await reference.set(
                    {"call_ids": list(call_ids), "expire_at": self._expiry(_now())},
                    timeout=self.timeout,
                )
            else:
                await reference.delete(timeout=self.timeout)

    async def take(self, conversation_id: str) -> tuple[str, ...]:
        snapshot = await self._take_document(self._pending(conversation_id), conversation_id)
        if snapshot is None or not _live(snapshot, _now()):
            return ()
        return tuple(snapshot.get("call_ids"))

    # RunEventLog

    async def append_events(self, run_id: str, events: Sequence[Mapping[str, Any]]) -> None:
        encoded = encode_events(events)  # all or none: checked before anything is written
        if not encoded:
            return
        run = self._run(run_id)
        expire_at = _now() + timedelta(seconds=RUN_LOG_TTL)
        # One writer per run, and nothing to read: batches, no transaction. The
        # log's document goes with the first batch; a batch is all or none, and
        # an append of more than one batch is a retry away from whole (an event
        # written again is the same document).
        with self._unavailable():
            for start in range(0, len(encoded), _BATCH_SIZE):
                batch = self._client.batch()
                if start == 0:
                    batch.set(self._run_log(run_id), {"expire_at": expire_at})
                for seq, text in encoded[start : start + _BATCH_SIZE]:
                    batch.set(
                        run.collection("events").document(f"{seq:012d}"),
                        {"seq": seq, "event": text, "expire_at": expire_at},
                    )
                await batch.commit(timeout=self.timeout)

    async def read_events(
        self, run_id: str, after: int = 0, *, wait: float = 0.0, limit: int = 1000
    ) -> list[Mapping[str, Any]]:
        if limit <= 0:
            return []
        # The async client has no listeners: a waiting read polls (two reads a look at most).
        deadline = anyio.current_time() + wait
        while True:
            with self._unavailable():
                texts = await self._events_after(run_id, after, limit)
            remaining = deadline - anyio.current_time()
            if texts or remaining <= 0:
                return decode_items(texts)
            await anyio.sleep(min(remaining, POLL_INTERVAL))

    async def expire_events(self, run_id: str, ttl: float) -> None:
        from google.api_core.exceptions import NotFound  # noqa: PLC0415 - loaded with the client

        with self._unavailable(), contextlib.suppress(NotFound):  # no log: nothing to forget
            await self._run_log(run_id).update(
                {"expire_at": _now() + timedelta(seconds=ttl)}, timeout=self.timeout
            )

    # RunRegistry

    async def save_run(self, record: RunRecord, ttl: float) -> None:
        check_ttl(ttl)
        expire_at = _now() + timedelta(seconds=ttl)
        latest = self._client.collection(f"{self.prefix}latest_runs").document(
            _document_id(record.conversation_id)
        )
        batch = self._client.batch()
        batch.set(self._run(record.run_id), {"record": encode_run(record), "expire_at": expire_at})
        batch.set(latest, {"run_id": record.run_id, "expire_at": expire_at})
        with self._unavailable():
            await batch.commit(timeout=self.timeout)

    async def load_run(self, run_id: str) -> RunRecord:
        with self._unavailable():
            snapshot = await self._read(self._run(run_id))
        if not _live(snapshot, _now()):
            raise NotFoundError("run", run_id)
        return decode_run(snapshot.get("record"))

    async def latest_run(self, conversation_id: str) -> RunRecord | None:
        latest = self._client.collection(f"{self.prefix}latest_runs").document(
            _document_id(conversation_id)
        )
        with self._unavailable():
            snapshot = await self._read(latest)
        if not _live(snapshot, _now()):
            return None
        try:
            return await self.load_run(snapshot.get("run_id"))
        except NotFoundError:
            return None

    async def request_cancel(self, run_id: str, ttl: float) -> None:
        check_ttl(ttl)
        expire_at = _now() + timedelta(seconds=ttl)
        with self._unavailable():
            await self._cancel(run_id).set({"expire_at": expire_at}, timeout=self.timeout)

    async def cancel_requested(self, run_id: str) -> bool:
        with self._unavailable():
            snapshot = await self._read(self._cancel(run_id))
        return _live(snapshot, _now())

    # OneTimeTokens

    async def put_token(self, key: str, value: str, ttl: float) -> None:
        check_ttl(ttl)
        expire_at = _now() + timedelta(seconds=ttl)
        with self._unavailable():
            await self._one_time(key).set(
                {"value": value, "expire_at": expire_at}, timeout=self.timeout
            )

    async def take_token(self, key: str) -> str | None:
        snapshot = await self._take_document(self._one_time(key), key)
        # The TTL policy deletes late: a token past its expiry is gone, deleted here or not.
        if snapshot is None or not _live(snapshot, _now()):
            return None
        return str(snapshot.get("value"))

    # Helpers

    async def _take_document(
        self, reference: AsyncDocumentReference, lock_name: str
    ) -> DocumentSnapshot[Any] | None:
        """Read a document and delete it, atomically: the snapshot, to the one taker whose delete lands.

        ``None`` when there is none. The delete holds only if nothing changed
        since the read. No transaction: takers on several instances would wait
        on each other's read locks.
        """
        from google.api_core.exceptions import FailedPrecondition  # noqa: PLC0415 - with the client

        with self._unavailable():
            async with self._one_at_a_time(lock_name):
                for _ in range(self.max_attempts):
                    snapshot = await self._read(reference)
                    if not snapshot.exists:
                        return None
                    unchanged = self._client.write_option(last_update_time=snapshot.update_time)
                    try:
                        await reference.delete(option=unchanged, timeout=self.timeout)
                    except FailedPrecondition:
                        continue  # another taker, or a new write, came first: look again
                    return snapshot
        raise StateStoreUnavailableError(
            f"{self._where} is contended: taking a document failed {self.max_attempts} times"
        )

    async def _events_after(self, run_id: str, after: int, limit: int) -> list[str]:
        """The JSON of up to ``limit`` live events above ``after``; none while the log is not live."""
        from google.cloud.firestore import FieldFilter  # noqa: PLC0415 - loaded with the client

        page = (
            await self._run(run_id)
            .collection("events")
            .where(filter=FieldFilter("seq", ">", after))
            .order_by("seq")
            .limit(limit)
            .get(timeout=self.timeout)
        )
        if not page:
            return []
        # Events outlive their log until the TTL policy deletes them: the log decides.
        log = await self._read(self._run_log(run_id))
        now = _now()
        if not _live(log, now):
            return []
        return [event.get("event") for event in page if _live(event, now)]

    def _run(self, run_id: str) -> AsyncDocumentReference:
        collection = self._client.collection(f"{self.prefix}runs")
        return collection.document(_document_id(run_id, "run"))

    def _run_log(self, run_id: str) -> AsyncDocumentReference:
        collection = self._client.collection(f"{self.prefix}run_logs")
        return collection.document(_document_id(run_id, "run"))

    def _cancel(self, run_id: str) -> AsyncDocumentReference:
        collection = self._client.collection(f"{self.prefix}run_cancels")
        return collection.document(_document_id(run_id, "run"))

    def _one_time(self, key: str) -> AsyncDocumentReference:
        collection = self._client.collection(f"{self.prefix}one_time_tokens")
        return collection.document(_document_id(key, "token"))

    def _conversation(self, conversation_id: str) -> AsyncDocumentReference:
        collection = self._client.collection(f"{self.prefix}conversations")
        return collection.document(_document_id(conversation_id))

    def _lease(self, conversation_id: str) -> AsyncDocumentReference:
        collection = self._client.collection(f"{self.prefix}leases")
        return collection.document(_document_id(conversation_id))

    def _pending(self, conversation_id: str) -> AsyncDocumentReference:
        collection = self._client.collection(f"{self.prefix}pending_calls")
        return collection.document(_document_id(conversation_id))

    @property
    def _where(self) -> str:
        database = self._client._database  # noqa: SLF001 - the client has no public name for it
        return f"the state store (Firestore {self._client.project}/{database})"

    async def _read(
        self, reference: AsyncDocumentReference, transaction: AsyncTransaction | None = None
    ) -> DocumentSnapshot[Any]:
        """One document, its response stream read to the end.

        ``AsyncDocumentReference.get`` returns on the first response and leaves
        the stream open: its last event can then arrive after the event loop
        it belongs to has closed, and fail whatever runs on the next one.
        """
        snapshots = self._client.get_all([reference], transaction=transaction, timeout=self.timeout)
        found = [snapshot async for snapshot in snapshots]
        return found[0]

    def _expiry(self, now: datetime) -> datetime:
        return now + timedelta(seconds=self.conversation_ttl)

    async def _transaction(
        self, conversation_id: str, work: Callable[[AsyncTransaction], Awaitable[T]]
    ) -> T:
        from google.cloud.firestore import async_transactional  # noqa: PLC0415 - with the client

        async with self._one_at_a_time(conversation_id):
            transaction = self._client.transaction(max_attempts=self.max_attempts)
            return await async_transactional(work)(transaction)

    @contextlib.asynccontextmanager
    async def _one_at_a_time(self, conversation_id: str) -> AsyncIterator[None]:
        # Without this, a burst of appends from one instance meets itself on the
        # conversation's document, and each waits out a lock (seconds each).
        lock = self._locks.setdefault(conversation_id, anyio.Lock())
        try:
            async with lock:
                yield
        finally:
            if not lock.locked() and lock.statistics().tasks_waiting == 0:
                self._locks.pop(conversation_id, None)

    @contextlib.contextmanager
    def _unavailable(self) -> Iterator[None]:
        """Raise every failure of Firestore (or the way to it) as ``StateStoreUnavailableError``."""
        from google.api_core import exceptions as api_exceptions  # noqa: PLC0415 - with the client
        from google.auth import exceptions as auth_exceptions  # noqa: PLC0415

        from assistant_service.adapters.gcp_errors import describe  # noqa: PLC0415

        where = self._where
        deadline: anyio.CancelScope | None = None
        try:
            # The client retries some failures for up to a minute: bound every call.
            with anyio.fail_after(self.timeout) as deadline:
                yield
        except TimeoutError:
            raise StateStoreUnavailableError(
                f"{where} did not answer within {self.timeout} s"
            ) from None
        except ValueError as error:
            if deadline is not None and deadline.cancel_called:
                # A transaction cut off before it began: the client's rollback
                # then fails with a ValueError that hides the cancellation.
                raise StateStoreUnavailableError(
                    f"{where} did not answer within {self.timeout} s"
                ) from error
            cancelled = error.__context__
            if isinstance(cancelled, anyio.get_cancelled_exc_class()):
                if anyio.current_effective_deadline() == -math.inf:
                    # The same, cancelled by the caller (a lease renewal its run no
                    # longer needs): let the cancellation through, not the ValueError.
                    raise cancelled from None
                # A cancellation inside the client, not of this task: passing it on
                # would cancel a caller nobody cancelled.
                raise StateStoreUnavailableError(
                    f"{where} stopped a call of its own: {error}"
                ) from error
            # How the client says a transaction kept meeting others: retries exhausted.
            if isinstance(error.__cause__, api_exceptions.Aborted):
                raise StateStoreUnavailableError(
                    f"{where} is contended: a transaction failed {self.max_attempts} times"
                ) from error
            raise
        except api_exceptions.InvalidArgument as error:
            raise InvalidInputError(f"{where} refused the write: {describe(error)}") from error
        except (api_exceptions.GoogleAPIError, auth_exceptions.GoogleAuthError, OSError) as error:
            raise StateStoreUnavailableError(
                f"{where} is unavailable: {describe(error)}"
            ) from error


def _holds(snapshot: DocumentSnapshot[Any], lease: Lease, now: datetime) -> bool:
    return (
        snapshot.exists
        and snapshot.get("token") == lease.token
        and snapshot.get("holder") == lease.holder
        and snapshot.get("expires_at") > now
    )
