"""The runs of an Assistants-API thread: adding a message past a stuck run, finding the waiting one."""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator
from typing import Any

import anyio
import attrs
import openai

from assistant_service.adapters._logs import get_logger
from assistant_service.adapters.llm.openai._calls import malformed, upstream_call
from assistant_service.adapters.llm.openai._client import upstream_headers
from assistant_service.adapters.llm.openai._errors import upstream_message
from assistant_service.adapters.llm.openai._replies import field, reading, text_field
from assistant_service.adapters.llm.openai.assistants._events import ACTIVE_STATUSES
from assistant_service.adapters.llm.openai.assistants._legacy_sdk import deprecated_api
from assistant_service.domain.errors import (
    ConflictError,
    UpstreamError,
    UpstreamUnavailableError,
)

BACKEND = "assistants"

log = get_logger("assistant_service.llm")


@contextlib.contextmanager
def thread_call(operation: str, thread_id: str) -> Iterator[None]:
    """An upstream call on one thread: logged, translated, a 404 as ``NotFoundError``."""
    with upstream_call(
        BACKEND, operation, not_found=("conversation", thread_id), conversation_id=thread_id
    ):
        yield


@contextlib.contextmanager
def run_call(assistant_id: str, *, created: bool) -> Iterator[None]:
    """Starting a run (``created``): a 404 means the server no longer knows the assistant.

    The thread was just written to, so the assistant is what is missing: an
    ``UpstreamError`` (502) naming it, never an unknown conversation.
    """
    if not created:
        yield
        return
    try:
        yield
    except openai.NotFoundError as error:
        raise UpstreamError(
            f"the model server knows no assistant {assistant_id!r} (404: "
            f"{upstream_message(error) or 'not found'}); push it again "
            "(assistant-service assistants push, or ASSISTANTS_AUTO_PUSH) or fix its remote_id"
        ) from error


@attrs.frozen
class RunView:
    """What recovery reads of a run: its id, status and creation time (Unix seconds)."""

    id: str
    status: str
    created_at: float

    @classmethod
    def of(cls, run: Any) -> RunView:
        """Raises ``MalformedEventError`` for a run without a string id or status."""
        created = field(run, "created_at")
        return cls(
            text_field(run, "id", backend=BACKEND, what="run"),
            text_field(run, "status", backend=BACKEND, what="run"),
            # A run of unknown age counts as new: a foreign one is then left alone a while.
            float(created) if isinstance(created, int | float) else time.time(),
        )


@attrs.define
class RunRecovery:
    """The runs of one thread: which one waits for tool outputs, and ending a stuck one.

    ``threads`` is the SDK's ``client.beta.threads``. Waiting for a cancelled
    run to end polls every ``poll_interval`` seconds for at most ``timeout``.
    """

    _threads: Any = attrs.field(alias="threads")
    thread_id: str
    timeout: float = 10.0
    poll_interval: float = 0.1

    async def add_message(self, text: str, *, refused_ok: bool) -> bool:
        """Add the user's message; ``False`` when the server refuses it and ``refused_ok``.

        A server refuses (400) a message while a run is active on the thread;
        the caller then clears the thread and tries once more.
        """
        with deprecated_api():
            pending = self._threads.messages.create(
                self.thread_id, role="user", content=text, extra_headers=upstream_headers()
            )
        with thread_call("threads.messages.create", self.thread_id):
            try:
                await pending
            except openai.BadRequestError:
                if not refused_ok:
                    raise
                return False
        return True

    async def clear(self, known_run_id: str | None, foreign_grace: float) -> None:
        """Leave no active run on the thread, so a message can be added.

        ``known_run_id`` is a run this process left behind: it is cancelled if
        still active. Without one the latest run is checked, and cancelled only
        when older than ``foreign_grace`` seconds. Raises ``ConflictError`` for a
        younger active run, ``UpstreamUnavailableError`` when a cancelled run
        does not end in time, ``NotFoundError`` for an unknown thread.
        """
        run = await self._retrieve(known_run_id) if known_run_id else await self._latest()
        if run is None or run.status not in ACTIVE_STATUSES:
            return
        if known_run_id is None and time.time() - run.created_at < foreign_grace:
            raise ConflictError(f"a run is already active on conversation {self.thread_id!r}")
        log.warning(
            "llm.run_recovered",
            backend=BACKEND,
            conversation_id=self.thread_id,
            run_id=run.id,
            status=run.status,
        )
        if run.status != "cancelling":
            await self._cancel(run.id)
        await self._wait_until_ended(run.id)

    async def waiting_run(self) -> str:
        """The id of the latest run if it waits for tool outputs; ``UpstreamError`` otherwise."""
        run = await self._latest()
        if run is None or run.status != "requires_action":
            raise UpstreamError(
                f"no run on conversation {self.thread_id!r} is waiting for tool outputs"
            )
        return run.id

    async def _latest(self) -> RunView | None:
        with deprecated_api():
            pending = self._threads.runs.list(
                self.thread_id, limit=1, order="desc", extra_headers=upstream_headers()
            )
        with thread_call("threads.runs.list", self.thread_id), reading(BACKEND, "runs page"):
            page = await pending
            runs = field(page, "data")
            if not isinstance(runs, list):
                raise malformed(BACKEND, "runs page", "no list of runs")
        return RunView.of(runs[0]) if runs else None

    async def _retrieve(self, run_id: str) -> RunView:
        with deprecated_api():
            pending = self._threads.runs.retrieve(
                run_id, thread_id=self.thread_id, extra_headers=upstream_headers()
            )
        with thread_call("threads.runs.retrieve", self.thread_id):
            return RunView.of(await pending)

    async def _cancel(self, run_id: str) -> None:
        with deprecated_api():
            pending = self._threads.runs.cancel(
                run_id, thread_id=self.thread_id, extra_headers=upstream_headers()
            )
        try:
            with upstream_call(BACKEND, "threads.runs.cancel", conversation_id=self.thread_id):
                await pending
        except UpstreamUnavailableError:
            raise
        except UpstreamError:
            pass  # the run may have ended meanwhile (the server refuses to cancel it): we look next

    async def _wait_until_ended(self, run_id: str) -> None:
        for attempt in range(math.ceil(self.timeout / self.poll_interval) + 1):
            if attempt:
                await anyio.sleep(self.poll_interval)
            run = await self._retrieve(run_id)
            if run.status not in ACTIVE_STATUSES:
                return
        raise UpstreamUnavailableError(
            f"an earlier run on conversation {self.thread_id!r} is still being cancelled",
            retry_after=self.timeout,
        )
