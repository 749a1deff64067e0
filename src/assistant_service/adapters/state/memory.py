"""Conversations, their history and run state in this process's memory."""

from __future__ import annotations

import itertools
import json
import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import anyio
import attrs

from assistant_service.adapters.state._common import (
    check_fence,
    check_ttl,
    conflict,
    decode_items,
    encode_events,
    encode_item,
    fenced_out,
    lease_lost,
)
from assistant_service.domain.errors import InvalidInputError, NotFoundError
from assistant_service.domain.leases import Lease
from assistant_service.domain.models import Conversation
from assistant_service.domain.runs import RunRecord


@attrs.define
class _History:
    conversation: Conversation
    # Items as JSON text: copied in and out by construction, and their size is known.
    texts: deque[str] = attrs.field(factory=deque)
    size: int = 0


@attrs.define
class _Grant:
    holder: str
    token: int
    expires_at: float  # on the store's clock; -inf once released

    def live(self, now: float) -> bool:
        return now < self.expires_at


@attrs.define
class _RunLog:
    texts: list[str] = attrs.field(factory=list)
    expires_at: float = math.inf
    # Made by the first reader that waits, set and dropped at the next append: a
    # run nobody follows makes none (one per append showed in every turn's profile).
    grew: anyio.Event | None = None


@attrs.define
class InMemoryStateStore:
    """Every state port for one process: conversations, leases, pending calls, runs.

    One object holds them all because a fenced append must see the lock's
    tokens. Runs (records, event logs, cancel requests) are bounded by
    ``max_runs`` (the least recently written go first) and a run's log by
    ``max_run_events``. Bounded: at most ``max_conversations`` conversations and
    ``max_bytes`` of stored items (their JSON size) in all; past either bound
    the least recently used conversation (read or written) is dropped. A
    history keeps its newest ``max_items`` items. Items are
    copied in and out as JSON: callers cannot change stored history by accident.
    ``clock`` (monotonic seconds) times the leases. Use it from one event loop.
    """

    max_conversations: int = attrs.field(default=10_000, validator=attrs.validators.gt(0))
    max_items: int = attrs.field(default=10_000, validator=attrs.validators.gt(0))
    max_bytes: int = attrs.field(default=64 * 1024 * 1024, validator=attrs.validators.gt(0))
    max_runs: int = attrs.field(default=10_000, validator=attrs.validators.gt(0))
    max_run_events: int = attrs.field(default=100_000, validator=attrs.validators.gt(0))
    max_tokens: int = attrs.field(default=10_000, validator=attrs.validators.gt(0))
    clock: Callable[[], float] = time.monotonic
    _histories: OrderedDict[str, _History] = attrs.field(factory=OrderedDict, init=False)
    _bytes: int = attrs.field(default=0, init=False)
    _grants: OrderedDict[str, _Grant] = attrs.field(factory=OrderedDict, init=False)
    _pending: OrderedDict[str, tuple[str, ...]] = attrs.field(factory=OrderedDict, init=False)
    # One counter for every conversation: per conversation its tokens still only rise.
    _tokens: itertools.count[int] = attrs.field(factory=lambda: itertools.count(1), init=False)
    _logs: OrderedDict[str, _RunLog] = attrs.field(factory=OrderedDict, init=False)
    _records: OrderedDict[str, tuple[RunRecord, float]] = attrs.field(
        factory=OrderedDict, init=False
    )
    _latest: OrderedDict[str, str] = attrs.field(factory=OrderedDict, init=False)
    _cancels: OrderedDict[str, float] = attrs.field(factory=OrderedDict, init=False)
    # One-time tokens: key -> (value, expires at), oldest put first.
    _tokens_kept: OrderedDict[str, tuple[str, float]] = attrs.field(factory=OrderedDict, init=False)

    @property
    def stored_bytes(self) -> int:
        """The JSON size of every stored item, in bytes."""
        return self._bytes

    # ConversationStore

    async def create(self, conversation: Conversation) -> None:
        if conversation.id in self._histories:
            raise InvalidInputError(f"conversation {conversation.id!r} exists already")
        self._histories[conversation.id] = _History(conversation)
        while len(self._histories) > self.max_conversations:
            self._evict_least_recently_used()

    async def get(self, conversation_id: str) -> Conversation:
        return self._use(conversation_id).conversation

    async def append(
        self,
        conversation_id: str,
        items: Sequence[Mapping[str, Any]],
        *,
        fence: Lease | None = None,
    ) -> None:
        history = self._use(conversation_id)
        if fence is not None:
            self._check_fence(conversation_id, fence)
        texts = [encode_item(item) for item in items]  # all or none: encode before changing
        added = sum(map(_size, texts))
        if added > self.max_bytes:
            raise InvalidInputError(
                f"{added} bytes of items exceed the store's bound of {self.max_bytes}"
            )
        history.texts.extend(texts)
        history.size += added
        self._bytes += added
        # Keep the newest items: an over-long history loses its oldest turns first.
        while len(history.texts) > self.max_items:
            self._drop_oldest_item(history)
        while self._bytes > self.max_bytes and len(self._histories) > 1:
            self._evict_least_recently_used()
        while self._bytes > self.max_bytes:
            self._drop_oldest_item(history)

    async def items(self, conversation_id: str) -> list[Mapping[str, Any]]:
        return decode_items(self._use(conversation_id).texts)

    # StateStoreHealth

    async def ping(self) -> None:
        """Memory always answers."""

    # RunLock

    async def acquire(self, conversation_id: str, holder: str, ttl: float) -> Lease:
        check_ttl(ttl)
        now = self.clock()
        grant = self._grants.get(conversation_id)
        if grant is not None and grant.live(now) and grant.holder != holder:
            raise conflict(conversation_id)
        token = next(self._tokens)
        self._grants[conversation_id] = _Grant(holder, token, now + ttl)
        self._grants.move_to_end(conversation_id)
        self._bound_grants(now)
        return Lease(conversation_id, holder, token, ttl)

    async def renew(self, lease: Lease) -> None:
        now = self.clock()
        grant = self._grants.get(lease.conversation_id)
        if grant is None or grant.token != lease.token or not grant.live(now):
            raise lease_lost(lease)
        grant.expires_at = now + lease.ttl
        self._grants.move_to_end(lease.conversation_id)

    async def release(self, lease: Lease) -> None:
        grant = self._grants.get(lease.conversation_id)
        if grant is not None and grant.token == lease.token:
            # The grant stays, released: it still names the conversation's current token.
            grant.expires_at = -math.inf

    # PendingCalls

    async def remember(self, conversation_id: str, call_ids: Sequence[str]) -> None:
        self._pending.pop(conversation_id, None)
        if call_ids:
            self._pending[conversation_id] = tuple(call_ids)
            while len(self._pending) > self.max_conversations:
                self._pending.popitem(last=False)

    async def take(self, conversation_id: str) -> tuple[str, ...]:
        return self._pending.pop(conversation_id, ())

    # RunEventLog

    async def append_events(self, run_id: str, events: Sequence[Mapping[str, Any]]) -> None:
        texts = [text for _, text in encode_events(events)]  # all or none
        log = self._logs.get(run_id)
        if log is None or log.expires_at <= self.clock():
            log = self._logs[run_id] = _RunLog()
        self._logs.move_to_end(run_id)
        log.texts.extend(texts)
        del log.texts[: max(0, len(log.texts) - self.max_run_events)]
        if log.grew is not None:
            log.grew.set()
            log.grew = None
        while len(self._logs) > self.max_runs:
            self._logs.popitem(last=False)

    async def read_events(
        self, run_id: str, after: int = 0, *, wait: float = 0.0, limit: int = 1000
    ) -> list[Mapping[str, Any]]:
        found = self._events_after(run_id, after, limit)
        if found or wait <= 0:
            return found
        log = self._logs.get(run_id)
        if log is None:
            log = self._logs[run_id] = _RunLog()  # a reader may come before the first event
            while len(self._logs) > self.max_runs:
                self._logs.popitem(last=False)
        if log.grew is None:
            log.grew = anyio.Event()
        with anyio.move_on_after(wait):
            await log.grew.wait()
        return self._events_after(run_id, after, limit)

    async def expire_events(self, run_id: str, ttl: float) -> None:
        log = self._logs.get(run_id)
        if log is not None:
            log.expires_at = self.clock() + ttl

    # RunRegistry

    async def save_run(self, record: RunRecord, ttl: float) -> None:
        check_ttl(ttl)
        self._records[record.run_id] = (record, self.clock() + ttl)
        self._records.move_to_end(record.run_id)
        self._latest[record.conversation_id] = record.run_id
        self._latest.move_to_end(record.conversation_id)
        while len(self._records) > self.max_runs:
            self._records.popitem(last=False)
        while len(self._latest) > self.max_runs:
            self._latest.popitem(last=False)

    async def load_run(self, run_id: str) -> RunRecord:
        kept = self._records.get(run_id)
        if kept is None or kept[1] <= self.clock():
            raise NotFoundError("run", run_id)
        return kept[0]

    async def latest_run(self, conversation_id: str) -> RunRecord | None:
        run_id = self._latest.get(conversation_id)
        if run_id is None:
            return None
        try:
            return await self.load_run(run_id)
        except NotFoundError:
            return None

    async def request_cancel(self, run_id: str, ttl: float) -> None:
        check_ttl(ttl)
        self._cancels[run_id] = self.clock() + ttl
        self._cancels.move_to_end(run_id)
        while len(self._cancels) > self.max_runs:
            self._cancels.popitem(last=False)

    async def cancel_requested(self, run_id: str) -> bool:
        return self._cancels.get(run_id, -math.inf) > self.clock()

    # OneTimeTokens

    async def put_token(self, key: str, value: str, ttl: float) -> None:
        check_ttl(ttl)
        now = self.clock()
        self._tokens_kept.pop(key, None)
        if len(self._tokens_kept) >= self.max_tokens:
            # Only when full: a sweep per put would cost a pass over every token.
            for old in [k for k, (_, ends) in self._tokens_kept.items() if ends <= now]:
                del self._tokens_kept[old]
        while len(self._tokens_kept) >= self.max_tokens:
            self._tokens_kept.popitem(last=False)
        self._tokens_kept[key] = (value, now + ttl)

    async def take_token(self, key: str) -> str | None:
        kept = self._tokens_kept.pop(key, None)
        if kept is None or kept[1] <= self.clock():
            return None
        return kept[0]

    # Helpers

    def _events_after(self, run_id: str, after: int, limit: int) -> list[Mapping[str, Any]]:
        log = self._logs.get(run_id)
        if log is None or log.expires_at <= self.clock():
            return []
        # seq has no gaps: the event after ``after`` sits at a known place.
        first_seq = json.loads(log.texts[0])["seq"] if log.texts else 1
        start = max(0, after + 1 - first_seq)
        return decode_items(log.texts[start : start + limit])

    def _use(self, conversation_id: str) -> _History:
        try:
            history = self._histories[conversation_id]
        except KeyError:
            raise NotFoundError("conversation", conversation_id) from None
        self._histories.move_to_end(conversation_id)
        return history

    def _check_fence(self, conversation_id: str, fence: Lease) -> None:
        check_fence(conversation_id, fence)
        grant = self._grants.get(conversation_id)
        # A store fences against its own grants: with none on record, none came later.
        if grant is not None and grant.token != fence.token:
            raise fenced_out(fence)

    def _evict_least_recently_used(self) -> None:
        _, history = self._histories.popitem(last=False)
        self._bytes -= history.size

    def _drop_oldest_item(self, history: _History) -> None:
        size = _size(history.texts.popleft())
        history.size -= size
        self._bytes -= size

    def _bound_grants(self, now: float) -> None:
        # Drop the least recently used grants that no longer hold anything; a live
        # one is never dropped (that would let a second run in), so live grants
        # can exceed the bound: they are bounded by the runs going on.
        excess = len(self._grants) - self.max_conversations
        if excess <= 0:
            return
        idle: list[str] = []
        for key, grant in self._grants.items():  # oldest first: these are mostly idle
            if not grant.live(now):
                idle.append(key)
                if len(idle) == excess:
                    break
        for key in idle:
            del self._grants[key]


def _size(text: str) -> int:
    """A stored item's size in bytes (its UTF-8 encoding)."""
    return len(text) if text.isascii() else len(text.encode())
