"""Conversations, their history and run state on Redis or Memorystore (the ``[redis]`` extra).

Every key of a conversation carries its id as a hash tag (``prefix{id}:items``),
so one conversation's keys share a cluster slot and each Lua script below
touches one slot. Keys:

- ``conversation``: the conversation as JSON; ``items``: a list of JSON items;
  both expire ``conversation_ttl`` after the last write.
- ``lease``: ``"<token> <holder>"``, expiring with the lease.
- ``token``: the fencing-token counter. It outlives every lease (``conversation_ttl``
  after the last grant); a counter that expired starts again from the server's
  clock in milliseconds, above every token it gave before, so none is reused.
- ``pending``: the remembered tool call ids, as a JSON list.
- ``latest_run``: the id of the conversation's latest run, expiring with its record.

A run's keys carry the run id as their hash tag (``prefix{run_id}:events``):

- ``events``: a stream, one entry per event: its id is ``<seq>-0``, its one
  field ``e`` the event's JSON, so reading after a seq is reading after an
  entry id. It expires ``RUN_LOG_TTL`` after the last append (an abandoned
  run's log does not stay for ever), or as ``expire_events`` says; it keeps
  about its newest ``MAX_RUN_EVENTS`` events.
- ``record``: the run's record as JSON; ``cancel``: present while a request
  to cancel the run is kept.

A one-time token's key carries the token's key (a digest) as its hash tag:
``prefix{key}:one_time``, its value, expiring with the token. Taking it is
one ``GETDEL``: of two takers only one sees the value.

A grant and a fenced append are each one script: a refused acquire must not
move the counter (that would fence out the live holder), and a fenced append
checks the counter and pushes in one step.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import re
import time
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

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
from assistant_service.domain.secrets import Secret

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.commands.core import AsyncScript

DEFAULT_PREFIX = "assistant-service:"
THIRTY_DAYS = 30 * 24 * 3600.0
RUN_LOG_TTL = 24 * 3600.0
MAX_RUN_EVENTS = 100_000
# Waiting reads block on Redis under a socket timeout of this much or more, else poll.
MIN_BLOCKING_TIMEOUT = 0.5
POLL_INTERVAL = 0.05

# KEYS: conversation, items. ARGV: the conversation's JSON, ttl ms.
_CREATE = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  redis.call('DEL', KEYS[2])
  return 1
end
return 0
"""

# KEYS: conversation, items, token. ARGV: fence token ('' for none), ttl ms, max items, items...
# Returns 0 when written, -1 for an unknown conversation, -2 for a stale fence.
_APPEND = """
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
if ARGV[1] ~= '' then
  -- A store fences against its own grants: with no token on record, no later grant exists.
  local current = redis.call('GET', KEYS[3])
  if current and current ~= ARGV[1] then return -2 end
end
-- unpack() is bounded by Lua's stack: push long batches in slices.
for first = 4, #ARGV, 1000 do
  redis.call('RPUSH', KEYS[2], unpack(ARGV, first, math.min(first + 999, #ARGV)))
end
if #ARGV >= 4 then
  redis.call('LTRIM', KEYS[2], -tonumber(ARGV[3]), -1)
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 0
"""

# KEYS: lease, token. ARGV: holder, lease ttl ms, counter ttl ms.
# Returns {1, token} when granted, {0, holder} while another holder's lease is live.
_ACQUIRE = """
local current = redis.call('GET', KEYS[1])
if current then
  local held_by = string.sub(current, string.find(current, ' ', 1, true) + 1)
  if held_by ~= ARGV[1] then return {0, held_by} end
end
local token
if redis.call('EXISTS', KEYS[2]) == 1 then
  token = string.format('%d', redis.call('INCR', KEYS[2]))
else
  local now = redis.call('TIME')
  token = now[1] .. string.format('%03d', math.floor(tonumber(now[2]) / 1000))
  redis.call('SET', KEYS[2], token)
end
redis.call('PEXPIRE', KEYS[2], ARGV[3])
redis.call('SET', KEYS[1], token .. ' ' .. ARGV[1], 'PX', ARGV[2])
return {1, token}
"""

# KEYS: lease, token. ARGV: the lease's value, lease ttl ms, counter ttl ms.
_RENEW = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return 1
"""

# KEYS: lease. ARGV: the lease's value.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# KEYS: events. ARGV: ttl ms, max events, then seq and JSON of each event, seqs rising.
# Events at or below the stream's last seq are there already (a repeated append): skipped.
_APPEND_EVENTS = """
local top = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local last = 0
if top[1] then last = tonumber(string.match(top[1][1], '^%d+')) end
for i = 3, #ARGV, 2 do
  if tonumber(ARGV[i]) > last then
    redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], ARGV[i] .. '-0', 'e', ARGV[i + 1])
    last = tonumber(ARGV[i])
  end
end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 0
"""

_CREDENTIALS_IN_URL = re.compile(r"(?<=://)[^@/\s]*@")


def _milliseconds(seconds: float) -> int:
    return max(1, round(seconds * 1000))


@attrs.define
class RedisStateStore:
    """Conversation store, run lock and pending calls on one Redis database.

    Built from a ``redis.asyncio.Redis`` client, which it then owns (``aclose``
    closes it), or by :meth:`from_url`. Keys start with ``prefix``; a
    conversation and its history expire ``conversation_ttl`` seconds after
    their last write, and a history keeps its newest ``max_items`` items. Every
    Redis failure is raised as ``StateStoreUnavailableError``. Give it a client
    that does not retry: a write retried after a lost reply would land twice.
    Needs Redis 6.2 or later.
    """

    _client: Redis = attrs.field(alias="client")
    prefix: str = DEFAULT_PREFIX
    conversation_ttl: float = attrs.field(default=THIRTY_DAYS, validator=attrs.validators.gt(0))
    max_items: int = attrs.field(default=10_000, validator=attrs.validators.gt(0))
    _scripts: dict[str, AsyncScript] = attrs.field(factory=dict, init=False)

    def __attrs_post_init__(self) -> None:
        # Scripts run by hash; redis-py loads one again after a restart emptied the cache.
        for name, source in (
            ("create", _CREATE),
            ("append", _APPEND),
            ("acquire", _ACQUIRE),
            ("renew", _RENEW),
            ("release", _RELEASE),
            ("append_events", _APPEND_EVENTS),
        ):
            self._scripts[name] = self._client.register_script(source)

    @classmethod
    def from_url(  # noqa: PLR0913 - the store's settings, all keyword-only
        cls,
        url: str,
        *,
        password: Secret | None = None,
        prefix: str = DEFAULT_PREFIX,
        conversation_ttl: float = THIRTY_DAYS,
        max_items: int = 10_000,
        timeout: float = 5.0,
    ) -> RedisStateStore:
        """A store on ``redis://`` (or ``rediss://``, ``unix://``) ``url``, with one connection pool.

        ``password`` (say, from Secret Manager) is for a URL without one: with
        both, ``ConfigurationError``.
        Commands time out after ``timeout`` seconds and are not retried; a
        connection the server closed is replaced before it is used. Redis
        Enterprise's maintenance notifications are off: build the client
        yourself to have them.
        Raises ``ConfigurationError`` for a URL redis-py cannot use.
        """
        try:
            from redis.asyncio import Redis  # noqa: PLC0415 - the [redis] extra, only when chosen
            from redis.asyncio.retry import Retry  # noqa: PLC0415
            from redis.backoff import NoBackoff  # noqa: PLC0415
        except ImportError as error:
            raise ConfigurationError(
                "the Redis state store needs the redis extra: pip install 'assistant-service[redis]'"
            ) from error

        if password is not None and _has_password(url):
            raise ConfigurationError("give the Redis password in the URL or as a secret, not both")
        options: dict[str, Any] = {
            "socket_timeout": timeout,
            "socket_connect_timeout": timeout,
            "retry": Retry(NoBackoff(), 0),
        }
        if password is not None:
            options["password"] = password.reveal()
        try:
            from redis.maint_notifications import MaintNotificationsConfig  # noqa: PLC0415
        except ImportError:  # redis-py before 7: no maintenance notifications
            pass
        else:
            # With them on ("auto", the default), redis-py hands out a pooled
            # connection without checking that the server closed it: the first
            # command after a restart or failover would fail.
            options["maint_notifications_config"] = MaintNotificationsConfig(enabled=False)
        try:
            client = Redis.from_url(url, **options)
        except ValueError as error:
            # redis-py's words for a bad URL name the scheme, never the URL; scrub all the same.
            detail = _CREDENTIALS_IN_URL.sub("***@", str(error))
            raise ConfigurationError(f"cannot use the Redis URL: {detail}") from None
        return cls(
            client=client, prefix=prefix, conversation_ttl=conversation_ttl, max_items=max_items
        )

    @property
    def client(self) -> Redis:
        """The redis-py client, for what shares the store's server and connections.

        The service's rate limits count on it: one pool, one set of credentials
        and timeouts. Closing the store closes its connections.
        """
        return self._client

    async def aclose(self) -> None:
        """Close the client and its connections."""
        with self._unavailable():
            await self._client.aclose()

    # ConversationStore

    async def create(self, conversation: Conversation) -> None:
        keys = [self._key(conversation.id, "conversation"), self._key(conversation.id, "items")]
        args: list[str | int] = [encode_conversation(conversation), self._ttl_ms]
        with self._unavailable():
            created = await self._scripts["create"](keys=keys, args=args)
        if not created:
            raise InvalidInputError(f"conversation {conversation.id!r} exists already")

    async def get(self, conversation_id: str) -> Conversation:
        with self._unavailable():
            text = await self._client.get(self._key(conversation_id, "conversation"))
        if text is None:
            raise NotFoundError("conversation", conversation_id)
        return decode_conversation(text)

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
        keys = [
            self._key(conversation_id, "conversation"),
            self._key(conversation_id, "items"),
            self._key(conversation_id, "token"),
        ]
        fence_token = "" if fence is None else str(fence.token)
        args: list[str | int] = [fence_token, self._ttl_ms, self.max_items, *texts]
        with self._unavailable():
            outcome = await self._scripts["append"](keys=keys, args=args)
        if outcome == -1:
            raise NotFoundError("conversation", conversation_id)
        if fence is not None and outcome == -2:
            raise fenced_out(fence)

    async def items(self, conversation_id: str) -> list[Mapping[str, Any]]:
        with self._unavailable():
            async with self._client.pipeline(transaction=True) as pipeline:
                pipeline.exists(self._key(conversation_id, "conversation"))
                pipeline.lrange(self._key(conversation_id, "items"), 0, -1)
                exists, texts = await pipeline.execute()
        if not exists:
            raise NotFoundError("conversation", conversation_id)
        return decode_items(texts)

    # StateStoreHealth

    async def ping(self) -> None:
        with self._unavailable():
            await self._client.ping()

    # RunLock

    async def acquire(self, conversation_id: str, holder: str, ttl: float) -> Lease:
        check_ttl(ttl)
        keys = [self._key(conversation_id, "lease"), self._key(conversation_id, "token")]
        args: list[str | int] = [holder, _milliseconds(ttl), self._ttl_ms]
        with self._unavailable():
            granted, detail = await self._scripts["acquire"](keys=keys, args=args)
        if not granted:
            raise conflict(conversation_id)
        return Lease(conversation_id, holder, int(detail), ttl)

    async def renew(self, lease: Lease) -> None:
        keys = [
            self._key(lease.conversation_id, "lease"),
            self._key(lease.conversation_id, "token"),
        ]
        args: list[str | int] = [_lease_value(lease), _milliseconds(lease.ttl), self._ttl_ms]
        with self._unavailable():
            renewed = await self._scripts["renew"](keys=keys, args=args)
        if not renewed:
            raise lease_lost(lease)

    async def release(self, lease: Lease) -> None:
        keys = [self._key(lease.conversation_id, "lease")]
        with self._unavailable():
            await self._scripts["release"](keys=keys, args=[_lease_value(lease)])

    # PendingCalls

    async def remember(self, conversation_id: str, call_ids: Sequence[str]) -> None:
        key = self._key(conversation_id, "pending")
        with self._unavailable():
            if call_ids:
                await self._client.set(key, json.dumps(list(call_ids)), px=self._ttl_ms)
            else:
                await self._client.delete(key)

    async def take(self, conversation_id: str) -> tuple[str, ...]:
        with self._unavailable():
            text = await self._client.getdel(self._key(conversation_id, "pending"))
        return () if text is None else tuple(json.loads(text))

    # RunEventLog

    async def append_events(self, run_id: str, events: Sequence[Mapping[str, Any]]) -> None:
        encoded = encode_events(events)  # all or none: checked before anything is sent
        if not encoded:
            return
        args: list[str | int] = [_milliseconds(RUN_LOG_TTL), MAX_RUN_EVENTS]
        for seq, text in encoded:
            args += [seq, text]
        with self._unavailable():
            await self._scripts["append_events"](keys=[self._key(run_id, "events")], args=args)

    async def read_events(
        self, run_id: str, after: int = 0, *, wait: float = 0.0, limit: int = 1000
    ) -> list[Mapping[str, Any]]:
        if limit <= 0:
            return []
        key = self._key(run_id, "events")
        streams: dict[Any, Any] = {key: f"{max(0, after)}-0"}  # entries after it: seq > after
        # XREAD BLOCK wakes as soon as an entry comes, with no polling. It holds a
        # pooled connection while it waits, and redis-py reads its reply under
        # the client's socket timeout; Redis ends a BLOCK up to a tick of its
        # clock late (100 ms at the default hz 10). So it blocks in slices of
        # half the socket timeout until ``wait`` ends: a reader holds a
        # connection that long at most at a time and never trips the timeout.
        # Under a socket timeout too short for that margin, it polls instead.
        # A cancelled read drops its connection (redis-py disconnects it): none
        # goes back to the pool with a reply still to come.
        deadline = time.monotonic() + wait
        slice_ = self._block_slice
        while True:
            remaining = deadline - time.monotonic()
            block = None if remaining <= 0 or slice_ is None else min(remaining, slice_)
            with self._unavailable():
                response = await self._client.xread(
                    streams, count=limit, block=None if block is None else _milliseconds(block)
                )
            texts = _stream_texts(response)
            if texts or remaining <= 0:
                return decode_items(texts)
            if block is None:
                await anyio.sleep(min(remaining, POLL_INTERVAL))

    async def expire_events(self, run_id: str, ttl: float) -> None:
        with self._unavailable():
            await self._client.pexpire(self._key(run_id, "events"), _milliseconds(ttl))

    # RunRegistry

    async def save_run(self, record: RunRecord, ttl: float) -> None:
        check_ttl(ttl)
        ttl_ms = _milliseconds(ttl)
        # Two slots (the run's, the conversation's): no transaction, the record first.
        with self._unavailable():
            async with self._client.pipeline(transaction=False) as pipeline:
                pipeline.set(self._key(record.run_id, "record"), encode_run(record), px=ttl_ms)
                pipeline.set(
                    self._key(record.conversation_id, "latest_run"), record.run_id, px=ttl_ms
                )
                await pipeline.execute()

    async def load_run(self, run_id: str) -> RunRecord:
        with self._unavailable():
            text = await self._client.get(self._key(run_id, "record"))
        if text is None:
            raise NotFoundError("run", run_id)
        return decode_run(text)

    async def latest_run(self, conversation_id: str) -> RunRecord | None:
        with self._unavailable():
            run_id = await self._client.get(self._key(conversation_id, "latest_run"))
        if run_id is None:
            return None
        try:
            return await self.load_run(run_id.decode() if isinstance(run_id, bytes) else run_id)
        except NotFoundError:
            return None

    async def request_cancel(self, run_id: str, ttl: float) -> None:
        check_ttl(ttl)
        with self._unavailable():
            await self._client.set(self._key(run_id, "cancel"), b"1", px=_milliseconds(ttl))

    async def cancel_requested(self, run_id: str) -> bool:
        with self._unavailable():
            return bool(await self._client.exists(self._key(run_id, "cancel")))

    # OneTimeTokens

    async def put_token(self, key: str, value: str, ttl: float) -> None:
        check_ttl(ttl)
        with self._unavailable():
            await self._client.set(self._key(key, "one_time"), value, px=_milliseconds(ttl))

    async def take_token(self, key: str) -> str | None:
        with self._unavailable():
            value = await self._client.getdel(self._key(key, "one_time"))
        if value is None:
            return None
        return value.decode() if isinstance(value, bytes) else str(value)

    # Helpers

    @property
    def _block_slice(self) -> float | None:
        """How long one XREAD may block; ``None``: poll, the socket timeout is too short."""
        timeout = self._client.connection_pool.connection_kwargs.get("socket_timeout")
        if not timeout:
            return math.inf
        return float(timeout) / 2 if timeout >= MIN_BLOCKING_TIMEOUT else None

    @property
    def _ttl_ms(self) -> int:
        return _milliseconds(self.conversation_ttl)

    def _key(self, conversation_id: str, kind: str) -> str:
        return f"{self.prefix}{{{conversation_id}}}:{kind}"

    @contextlib.contextmanager
    def _unavailable(self) -> Iterator[None]:
        """Raise every failure of Redis (or the way to it) as ``StateStoreUnavailableError``."""
        from redis.exceptions import RedisError  # noqa: PLC0415 - loaded with the client already

        try:
            yield
        except (RedisError, OSError, asyncio.TimeoutError) as error:
            # Not chained: the vendor's exception carries connection details into tracebacks.
            raise StateStoreUnavailableError(self._describe(error)) from None

    def _describe(self, error: BaseException) -> str:
        options = self._client.connection_pool.connection_kwargs
        where = options.get("path") or f"{options.get('host')}:{options.get('port')}"
        detail = _CREDENTIALS_IN_URL.sub("***@", f"{type(error).__name__}: {error}")
        password = options.get("password")
        if password:
            detail = detail.replace(str(password), "***")
        return f"the state store (Redis at {where}) is unavailable: {detail}"


def _has_password(url: str) -> bool:
    parts = urllib.parse.urlsplit(url)
    return bool(parts.password) or "password" in urllib.parse.parse_qs(parts.query)


def _stream_texts(response: Any) -> list[bytes]:
    """The ``e`` fields of one stream's entries, from XREAD's reply in RESP2 or RESP3."""
    if not response:
        return []
    found = response.values() if isinstance(response, dict) else [s[1] for s in response]
    texts: list[bytes] = []
    for stream in found:
        # RESP3, as redis-py parses it, nests the entries one list deeper.
        entries = stream[0] if stream and isinstance(stream[0], list) else stream
        for _, fields in entries:
            text = fields[b"e"] if b"e" in fields else fields["e"]  # decode_responses or not
            texts.append(text if isinstance(text, bytes) else text.encode())
    return texts


def _lease_value(lease: Lease) -> str:
    return f"{lease.token} {lease.holder}"
