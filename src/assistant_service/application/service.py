"""The facade: start conversations, chat and stream, with inputs checked first."""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator, Mapping
from contextlib import aclosing
from typing import TYPE_CHECKING

import attrs

from assistant_service.application.history import (
    DEFAULT_PAGE_SIZE,
    check_limit,
    decode_cursor,
    page_of,
)
from assistant_service.application.lease_keeper import LeaseKeeper, released_at_exit
from assistant_service.application.observing import NO_OBSERVER, observed_run
from assistant_service.application.run_loop import new_run_id, run_turn
from assistant_service.domain.errors import InvalidInputError
from assistant_service.domain.events import RunCompleted, RunEvent, RunFailed
from assistant_service.domain.models import (
    AssistantProfile,
    Conversation,
    HistoryPage,
    Message,
    RunResult,
)
from assistant_service.ports.observer import RunInfo

if TYPE_CHECKING:
    from assistant_service.ports.config import AssistantConfigRepository
    from assistant_service.ports.language_model import LanguageModel
    from assistant_service.ports.observer import Observer
    from assistant_service.ports.run_state import RunLock
    from assistant_service.ports.tools import ToolRegistry

_CONVERSATION_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")
DEFAULT_LOCK_TTL = 30.0
# How long a run's end may wait for the lease's release before leaving it to lapse.
RELEASE_TIMEOUT = 5.0


@attrs.define
class AssistantService:
    """Chat with assistants over conversations.

    Built from ports (see :func:`assistant_service.bootstrap` for defaults).
    One run at a time per conversation, across every process that shares
    ``run_lock``: a run holds the conversation's lease (``lock_ttl`` seconds,
    renewed while it lives, released at its end); a second run on a
    conversation that has one active is refused with :class:`ConflictError`
    (HTTP 409) rather than queued, so a client never waits behind a run it
    cannot see. A run whose process died frees the conversation when its lease
    lapses. Give the model's conversation store as ``run_lock`` (one state
    store for both) so a run that lost its lease cannot write history.
    """

    _model: LanguageModel = attrs.field(alias="model")
    _configs: AssistantConfigRepository = attrs.field(alias="configs")
    _tools: ToolRegistry = attrs.field(alias="tools")
    _run_lock: RunLock = attrs.field(alias="run_lock")
    default_assistant_id: str | None = None
    lock_ttl: float = attrs.field(default=DEFAULT_LOCK_TTL, validator=attrs.validators.gt(0))
    # Told of every run, step and tool call (metrics, traces): see ports/observer.py.
    observer: Observer = attrs.field(default=NO_OBSERVER, kw_only=True)

    async def start_conversation(
        self, assistant_id: str | None = None, metadata: Mapping[str, str] | None = None
    ) -> str:
        """Open a conversation with ``assistant_id`` (or the default) and return its id.

        Raises ``NotFoundError`` for an unknown assistant and ``InvalidInputError``
        when no assistant is named and there is no default.
        """
        profile = await self._profile(assistant_id or self.default_assistant_id)
        conversation = await self._model.open_conversation(profile, metadata)
        return conversation.id

    async def chat(self, conversation_id: str, message: str) -> RunResult:
        """Run one turn and return its result.

        Raises ``NotFoundError``, ``InvalidInputError`` or ``ConflictError`` before
        the run, and the run's error (``UpstreamError``, ``RunLimitError``...) when it fails.
        """
        async with aclosing(self.stream(conversation_id, message)) as events:
            async for event in events:
                if isinstance(event, RunCompleted):
                    return event.result
                if isinstance(event, RunFailed):
                    raise event.error
        raise AssertionError("a run always ends with RunCompleted or RunFailed")  # pragma: no cover

    async def stream(self, conversation_id: str, message: str) -> AsyncGenerator[RunEvent, None]:
        """Run one turn and stream its events; it ends with ``RunCompleted`` or ``RunFailed``.

        Checks happen on the first iteration and raise as :meth:`chat` does.
        Close the iterator when you stop early (``contextlib.aclosing``): that
        cancels the tools in flight and frees the conversation for the next run.
        """
        conversation = await self._conversation(conversation_id)
        profile = await self._profile(conversation.assistant_id)
        _check_message(message, profile)
        run_id = new_run_id()
        lease = await self._run_lock.acquire(conversation.id, run_id, self.lock_ttl)
        observation = self.observer.run_started(
            RunInfo(run_id, conversation.id, profile.id, profile.model)
        )
        async with (
            released_at_exit(self._run_lock, lease, RELEASE_TIMEOUT),
            aclosing(
                observed_run(
                    run_turn(
                        model=self._model,
                        tools=self._tools,
                        profile=profile,
                        conversation=conversation,
                        message=message,
                        run_id=run_id,
                        keeper=LeaseKeeper(lock=self._run_lock, lease=lease),
                        observation=observation,
                    ),
                    observation,
                )
            ) as events,
        ):
            async for event in events:
                yield event

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
