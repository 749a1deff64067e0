"""The facade: start conversations, chat and stream, steer runs, with inputs checked first."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from contextlib import aclosing
from typing import TYPE_CHECKING, Any

import anyio
import attrs

from assistant_service.application.event_codec import decode_event
from assistant_service.application.history import (
    DEFAULT_PAGE_SIZE,
    check_limit,
    decode_cursor,
    page_of,
)
from assistant_service.application.observing import NO_OBSERVER, observed_run
from assistant_service.application.run_guard import LeaseRelease, RunGuard, released_at_exit
from assistant_service.application.run_loop import Resumption, new_run_id, run_turn
from assistant_service.application.run_publishing import EventPublisher
from assistant_service.domain.errors import (
    AssistantServiceError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
    RunInterruptedError,
    UpstreamError,
)
from assistant_service.domain.events import (
    FINAL_EVENTS,
    FinalEvent,
    RunEvent,
    RunFailed,
    RunRequiresApproval,
)
from assistant_service.domain.models import (
    AssistantProfile,
    Conversation,
    HistoryPage,
    Message,
    RunResult,
    RunStatus,
)
from assistant_service.domain.runs import ApprovalDecision, RunRecord
from assistant_service.ports.observer import RunInfo

if TYPE_CHECKING:
    from assistant_service.ports.config import AssistantConfigRepository
    from assistant_service.ports.language_model import LanguageModel
    from assistant_service.ports.observer import Observer
    from assistant_service.ports.run_state import RunState
    from assistant_service.ports.tools import ToolRegistry

log = logging.getLogger(__name__)

_CONVERSATION_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")
_RUN_ID = re.compile(r"run_[A-Za-z0-9_-]{1,124}")
DEFAULT_LOCK_TTL = 30.0
DEFAULT_EVENTS_TTL = 600.0
DEFAULT_APPROVAL_TTL = 24 * 3600.0
# How long a run's end may wait for its bookkeeping (release, last record) before giving up.
CLEANUP_TIMEOUT = 5.0
# A follower of a run's events asks the log for more at most this long at a time.
FOLLOW_WAIT = 1.0
# How long a follower waits for the final event of a run recorded as ended.
FINAL_EVENT_WAIT = 0.5

StartSoon = Callable[..., Any]


@attrs.define
class AssistantService:
    """Chat with assistants over conversations, and steer the runs.

    Built from ports (see :func:`assistant_service.bootstrap` for defaults).
    ``state`` is the shared run state: every process that shares it shares
    the guarantees below.

    - One run at a time per conversation: a run holds the conversation's lease
      (``lock_ttl`` seconds, renewed while it lives, released at its end); a
      second run is refused with :class:`ConflictError` (HTTP 409) rather than
      queued. A run whose process died frees the conversation when its lease
      lapses. Give the model's conversation store as ``state`` too, so a run
      that lost its lease cannot write history.
    - Every event of a run is numbered (``seq``) and logged: :meth:`events`
      replays and follows a run from any instance, ``events_ttl`` seconds
      after it ended at most.
    - :meth:`cancel` stops a run from any instance; tools flagged for approval
      stop a run until :meth:`decide` continues it (within ``approval_ttl``).
    """

    _model: LanguageModel = attrs.field(alias="model")
    _configs: AssistantConfigRepository = attrs.field(alias="configs")
    _tools: ToolRegistry = attrs.field(alias="tools")
    _state: RunState = attrs.field(alias="state")
    default_assistant_id: str | None = None
    lock_ttl: float = attrs.field(default=DEFAULT_LOCK_TTL, validator=attrs.validators.gt(0))
    events_ttl: float = attrs.field(default=DEFAULT_EVENTS_TTL, validator=attrs.validators.gt(0))
    approval_ttl: float = attrs.field(
        default=DEFAULT_APPROVAL_TTL, validator=attrs.validators.gt(0)
    )
    # Told of every run, step and tool call (metrics, traces): see ports/observer.py.
    observer: Observer = attrs.field(default=NO_OBSERVER, kw_only=True)
    # The runs going on in this process, to cancel at once (others are polled).
    _guards: dict[str, RunGuard] = attrs.field(factory=dict, init=False)

    async def start_conversation(
        self, assistant_id: str | None = None, metadata: Mapping[str, str] | None = None
    ) -> str:
        """Open a conversation with ``assistant_id`` (or the default) and return its id.

        Raises ``NotFoundError`` for an unknown assistant, ``InvalidInputError``
        when no assistant is named and there is no default, and ``UpstreamError``
        when the model's conversation id is not one this service accepts.
        """
        profile = await self._profile(assistant_id or self.default_assistant_id)
        conversation = await self._model.open_conversation(profile, metadata)
        if not _CONVERSATION_ID.fullmatch(conversation.id):
            # Every later call would refuse this id: the conversation could never be used.
            raise UpstreamError(
                "the language model opened a conversation whose id this service cannot use",
                fault=True,
            )
        return conversation.id

    async def chat(self, conversation_id: str, message: str) -> RunResult:
        """Run one turn and return its result.

        Raises ``NotFoundError``, ``InvalidInputError`` or ``ConflictError`` before
        the run, and the run's error (``UpstreamError``, ``RunLimitError``...) when
        it fails. A run stopped for approvals or cancelled returns its result
        with that ``status`` (``result.pending`` lists the calls to decide).
        """
        return await result_of(self.stream(conversation_id, message))

    async def stream(
        self, conversation_id: str, message: str, *, run_id: str | None = None
    ) -> AsyncGenerator[RunEvent, None]:
        """Run one turn and stream its events; the last one ends the run.

        That is ``RunCompleted``, ``RunFailed``, ``RunCancelled`` or
        ``RunRequiresApproval``. Checks happen on the first iteration and
        raise as :meth:`chat` does. Close the iterator when you stop early
        (``contextlib.aclosing``): that cancels the tools in flight and frees
        the conversation for the next run. A new message denies the calls an
        earlier run left waiting for approval.
        """
        conversation = await self._conversation(conversation_id)
        profile = await self._profile(conversation.assistant_id)
        _check_message(message, profile)
        run_id = run_id or new_run_id()
        lease = await self._state.acquire(conversation.id, run_id, self.lock_ttl)
        async with released_at_exit(self._state, lease, CLEANUP_TIMEOUT) as release:
            latest = await self._state.latest_run(conversation.id)
            if latest is not None and latest.awaits_decision:
                superseded = attrs.evolve(latest, resumed_by=run_id)
                await self._state.save_run(superseded, self.events_ttl)
            async with aclosing(
                self._run(conversation, profile, release, run_id, message=message)
            ) as events:
                async for event in events:
                    yield event

    async def decide(
        self, conversation_id: str | None, run_id: str, decisions: Sequence[ApprovalDecision]
    ) -> AsyncGenerator[RunEvent, None]:
        """Continue the run ``run_id`` stopped for approvals, with a decision per pending call.

        Streams the continuing run (its ``RunStarted.resumes`` is ``run_id``):
        approved calls run, denied ones answer the model with the reason.
        Raises ``NotFoundError`` for an unknown run (or one of another
        conversation, or whose approvals expired), ``ConflictError`` when it
        does not wait for a decision (any more), and ``InvalidInputError``
        unless every pending call is decided exactly once. Without
        ``conversation_id`` the run's own conversation is used.
        """
        stopped = await self._record(conversation_id, run_id)
        conversation = await self._conversation(stopped.conversation_id)
        profile = await self._profile(conversation.assistant_id)
        if not stopped.awaits_decision:
            raise ConflictError(f"run {run_id!r} does not wait for approvals")
        chosen = _check_decisions(stopped, decisions)
        new_id = new_run_id()
        lease = await self._state.acquire(conversation.id, new_id, self.lock_ttl)
        async with released_at_exit(self._state, lease, CLEANUP_TIMEOUT) as release:
            # Read again under the lease: a decision or a message may have come first.
            stopped = await self._record(conversation.id, run_id)
            if not stopped.awaits_decision:
                raise ConflictError(f"run {run_id!r} does not wait for approvals")
            await self._state.save_run(attrs.evolve(stopped, resumed_by=new_id), self.events_ttl)
            resumption = Resumption(
                resumes=run_id,
                calls=stopped.stopped_round,
                held=stopped.held_outcomes,
                decisions=chosen,
            )
            async with aclosing(
                self._run(conversation, profile, release, new_id, resumption=resumption)
            ) as events:
                async for event in events:
                    yield event

    async def approve(
        self, conversation_id: str | None, run_id: str, decisions: Sequence[ApprovalDecision]
    ) -> RunResult:
        """:meth:`decide`, run to its end: the continuing run's result (as :meth:`chat`)."""
        return await result_of(self.decide(conversation_id, run_id, decisions))

    async def submit(self, conversation_id: str, message: str, *, start_soon: StartSoon) -> str:
        """Start a run in the background and return its id once it holds the conversation.

        ``start_soon`` runs it (an anyio task group's ``start_soon``, Quart's
        ``add_background_task``); follow it with :meth:`events` and :meth:`run`.
        Raises as :meth:`chat` does before the run.
        """
        events = self.stream(conversation_id, message)
        started = await anext(events)  # the checks and the lease happen here
        start_soon(_drain, events)
        return started.run_id

    async def cancel(self, conversation_id: str | None, run_id: str) -> RunRecord:
        """Ask the run to stop; it ends with ``RunCancelled`` within a second, on any instance.

        Raises ``NotFoundError`` for an unknown run (or one of another
        conversation) and ``ConflictError`` for a run that already ended.
        Without ``conversation_id``, any run of the shared state may be named.
        """
        record = await self._record(conversation_id, run_id)
        if record.status.ended:
            raise ConflictError(f"run {run_id!r} has ended already ({record.status.value})")
        guard = self._guards.get(run_id)
        if guard is not None:
            guard.cancel()
        else:
            await self._state.request_cancel(run_id, self.events_ttl)
        return record

    async def run(self, conversation_id: str | None, run_id: str) -> RunRecord:
        """What is known of the run: status, and its result once it ended."""
        return await self._record(conversation_id, run_id)

    async def events(
        self, conversation_id: str | None, run_id: str, *, after: int = 0
    ) -> AsyncGenerator[RunEvent, None]:
        """The run's events after ``seq`` ``after``, then the new ones as they come, to its end.

        Works from any instance while the run goes on and ``events_ttl``
        seconds after it ended. Raises ``NotFoundError`` for an unknown run
        and ``InvalidInputError`` for a negative ``after``.
        """
        if after < 0:
            raise InvalidInputError("invalid event number", {"after": "must be 0 or more"})
        await self._record(conversation_id, run_id)
        while True:
            batch = await self._state.read_events(run_id, after, wait=FOLLOW_WAIT)
            for data in batch:
                event = decode_event(data)
                after = event.seq
                yield event
                if isinstance(event, FINAL_EVENTS):
                    return
            if not batch:
                try:
                    record = await self._state.load_run(run_id)
                except NotFoundError:
                    return  # expired, or its process died and its record lapsed
                # A run is recorded as ended just before its final event is logged.
                if record.status.ended and not await self._state.read_events(
                    run_id, after, wait=FINAL_EVENT_WAIT
                ):
                    return

    async def history(self, conversation_id: str) -> list[Message]:
        """The conversation's messages, oldest first."""
        conversation = await self._conversation(conversation_id)
        return await self._model.history(conversation.id)

    async def history_page(
        self, conversation_id: str, *, limit: int = DEFAULT_PAGE_SIZE, cursor: str | None = None
    ) -> HistoryPage:
        """``limit`` (1 to 100) of the conversation's messages, oldest first.

        Without ``cursor`` the page starts at the oldest message; pass a page's
        ``next_cursor`` to get the one after it, until ``has_more`` is false. The
        cursor is an opaque token for an offset into the oldest-first history, so
        the walk sees every message exactly once while the history only grows; a
        backend that drops its oldest messages shifts the pages by that many.

        Raises ``InvalidInputError`` naming ``conversation_id``, ``limit`` or
        ``cursor`` (anything that is not a ``next_cursor`` this history could
        have issued), and ``NotFoundError`` for an unknown conversation.
        """
        check_limit(limit)
        offset = 0 if cursor is None else decode_cursor(cursor)
        return page_of(await self.history(conversation_id), limit=limit, offset=offset)

    async def _run(  # noqa: PLR0913 -- the run's parts, all from the public verbs
        self,
        conversation: Conversation,
        profile: AssistantProfile,
        release: LeaseRelease,
        run_id: str,
        *,
        message: str | None = None,
        resumption: Resumption | None = None,
    ) -> AsyncGenerator[RunEvent, None]:
        """One run under ``release.lease``: numbered, logged, recorded, cancellable."""
        lease = release.lease
        record = RunRecord(
            run_id, conversation.id, resumes=resumption.resumes if resumption else None
        )
        await self._state.save_run(record, self._live_ttl)

        async def heartbeat() -> None:
            await self._state.save_run(record, self._live_ttl)

        guard = RunGuard(
            lock=self._state,
            lease=lease,
            remote_cancelled=lambda: self._state.cancel_requested(run_id),
            heartbeat=heartbeat,
        )
        self._guards[run_id] = guard
        publisher = EventPublisher(log=self._state, run_id=run_id)
        final: FinalEvent | None = None
        observation = self.observer.run_started(
            RunInfo(run_id, conversation.id, profile.id, profile.model)
        )
        recorded = False
        try:
            async with aclosing(
                observed_run(
                    run_turn(
                        model=self._model,
                        tools=self._tools,
                        profile=profile,
                        conversation=conversation,
                        message=message,
                        run_id=run_id,
                        guard=guard,
                        resumption=resumption,
                        observation=observation,
                    ),
                    observation,
                )
            ) as events:
                seq = 0
                async for event in events:
                    seq += 1
                    numbered = attrs.evolve(event, seq=seq)
                    if isinstance(numbered, FINAL_EVENTS):
                        final = numbered
                        # Before anyone sees the final event (here or resumed on another
                        # instance): the run is recorded as ended and its conversation free.
                        with anyio.move_on_after(CLEANUP_TIMEOUT, shield=True):
                            await self._conclude(record, final, release)
                            recorded = True
                    await self._publish(publisher, numbered)
                    yield numbered
        finally:
            del self._guards[run_id]
            with anyio.move_on_after(CLEANUP_TIMEOUT, shield=True):
                await self._finish(publisher, record, final, recorded=recorded)

    @property
    def _live_ttl(self) -> float:
        # A running run's record lapses soon after its heartbeats stop (its process died).
        return 3 * self.lock_ttl

    async def _publish(self, publisher: EventPublisher, event: RunEvent) -> None:
        try:
            await publisher.add(event)
        except AssistantServiceError as error:
            # The run goes on for its own stream; only a resumed stream misses this.
            log.warning(
                "run.events_not_logged",
                extra={"run_id": publisher.run_id, "error_code": error.code},
            )

    async def _conclude(self, record: RunRecord, final: FinalEvent, release: LeaseRelease) -> None:
        """Record how the run ended and free its conversation (its history is written)."""
        ended, ttl = self._ended(record, final)
        try:
            await self._state.save_run(ended, ttl)
        except AssistantServiceError as error:
            log.warning(
                "run.not_recorded", extra={"run_id": record.run_id, "error_code": error.code}
            )
        try:
            await release.release()
        except AssistantServiceError as error:  # released again at the run's exit
            log.warning(
                "lease.release_failed", extra={"run_id": record.run_id, "error_code": error.code}
            )

    async def _finish(
        self,
        publisher: EventPublisher,
        record: RunRecord,
        final: FinalEvent | None,
        *,
        recorded: bool = False,
    ) -> None:
        """Record how the run ended (unless done) and keep its events for ``events_ttl``."""
        ended, ttl = self._ended(record, final)
        try:
            await publisher.flush()
            if not recorded:
                await self._state.save_run(ended, ttl)
            await self._state.expire_events(record.run_id, ttl)
        except AssistantServiceError as error:
            log.warning(
                "run.not_recorded", extra={"run_id": record.run_id, "error_code": error.code}
            )

    def _ended(self, record: RunRecord, final: FinalEvent | None) -> tuple[RunRecord, float]:
        """The record of the run ended with ``final`` (interrupted, when it never got to say)."""
        ttl = self.events_ttl
        if isinstance(final, RunRequiresApproval):
            ended = attrs.evolve(
                record,
                status=RunStatus.REQUIRES_APPROVAL,
                result=final.result,
                stopped_round=final.stopped_round,
                held_outcomes=_held(final),
            )
            ttl = self.approval_ttl
        elif isinstance(final, RunFailed):
            ended = attrs.evolve(
                record,
                status=RunStatus.FAILED,
                result=final.result,
                error_code=final.error.code,
                error_message=final.error.message,
            )
        elif final is not None:
            ended = attrs.evolve(record, status=final.result.status, result=final.result)
        else:
            interrupted = RunInterruptedError("the run stopped before it ended")
            ended = attrs.evolve(
                record,
                status=RunStatus.FAILED,
                error_code=interrupted.code,
                error_message=interrupted.message,
            )
        return ended, ttl

    async def _record(self, conversation_id: str | None, run_id: str) -> RunRecord:
        """The run's record, if it belongs to the conversation; ``NotFoundError`` otherwise."""
        if conversation_id is not None and not _CONVERSATION_ID.fullmatch(conversation_id):
            raise InvalidInputError(
                "invalid conversation id",
                {"conversation_id": "must be 1 to 128 letters, digits, '_' or '-'"},
            )
        if not _RUN_ID.fullmatch(run_id):
            raise InvalidInputError("invalid run id", {"run_id": "must be a run id (run_...)"})
        record = await self._state.load_run(run_id)
        if conversation_id is not None and record.conversation_id != conversation_id:
            raise NotFoundError("run", run_id)  # another conversation's run is none of its business
        return record

    async def conversation(self, conversation_id: str) -> Conversation:
        """The conversation ``conversation_id``, with its metadata.

        Raises ``NotFoundError`` for an unknown one, ``InvalidInputError`` for a malformed id.
        """
        return await self._conversation(conversation_id)

    async def profile(self, assistant_id: str | None = None) -> AssistantProfile:
        """The profile of ``assistant_id``, or of the default assistant."""
        return await self._profile(assistant_id or self.default_assistant_id)

    async def _conversation(self, conversation_id: str) -> Conversation:
        if not _CONVERSATION_ID.fullmatch(conversation_id):
            raise InvalidInputError(
                "invalid conversation id",
                {"conversation_id": "must be 1 to 128 letters, digits, '_' or '-'"},
            )
        return await self._model.get_conversation(conversation_id)

    async def _profile(self, assistant_id: str | None) -> AssistantProfile:
        if not assistant_id:
            raise InvalidInputError(
                "no assistant named and no default assistant",
                {"assistant_id": "required: this service has no default assistant"},
            )
        return await self._configs.get(assistant_id)


def _check_message(message: str, profile: AssistantProfile) -> None:
    if not message.strip():
        raise InvalidInputError("the message is empty", {"message": "must not be empty"})
    limit = profile.limits.max_message_length
    if len(message) > limit:
        raise InvalidInputError(
            "the message is too long",
            {"message": f"at most {limit} characters, got {len(message)}"},
        )


def _check_decisions(
    stopped: RunRecord, decisions: Sequence[ApprovalDecision]
) -> dict[str, ApprovalDecision]:
    pending = [call.id for call in stopped.result.pending] if stopped.result else []
    chosen: dict[str, ApprovalDecision] = {}
    problems: dict[str, str] = {}
    for decision in decisions:
        if decision.call_id in chosen:
            problems[decision.call_id] = "decided twice"
        elif decision.call_id not in pending:
            problems[decision.call_id] = "not a call waiting for approval in this run"
        chosen[decision.call_id] = decision
    missing = [call_id for call_id in pending if call_id not in chosen]
    if missing:
        problems["decisions"] = "every pending call needs a decision; missing: " + ", ".join(
            missing
        )
    if problems:
        raise InvalidInputError("the decisions do not match the pending calls", problems)
    return chosen


def _held(final: RunRequiresApproval) -> tuple[Any, ...]:
    round_ids = {call.id for call in final.stopped_round}
    return tuple(o for o in final.result.tool_outcomes if o.call.id in round_ids)


async def result_of(events: AsyncGenerator[RunEvent, None]) -> RunResult:
    """The result a run's events end with; the run's error when it failed.

    Raises ``RunInterruptedError`` when the events end before the run did (a
    followed run whose record lapsed); closes ``events`` either way.
    """
    async with aclosing(events) as stream:
        async for event in stream:
            if isinstance(event, RunFailed):
                raise event.error
            if isinstance(event, FINAL_EVENTS):
                return event.result
    raise RunInterruptedError("the run's events ended before the run did")


async def _drain(events: AsyncGenerator[RunEvent, None]) -> None:
    """Run a background run to its end; its events are in the log."""
    async with aclosing(events) as stream:
        async for _ in stream:
            pass
