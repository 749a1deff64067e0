"""The language-model port on the Assistants API (threads and runs).

OpenAI shut this API down on 2026-08-26; self-hosted compatible servers and
older Azure deployments still speak it. A conversation is a thread, a step is
a streamed run (or its continuation after tool outputs).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Mapping, Sequence
from contextlib import aclosing
from typing import Any, cast

import attrs
from openai import AsyncOpenAI, omit

from assistant_service.adapters.llm.openai._calls import (
    MalformedEventError,
    StepGuard,
    malformed,
    upstream_call,
)
from assistant_service.adapters.llm.openai._client import upstream_headers
from assistant_service.adapters.llm.openai._replies import reading, text_field, time_field
from assistant_service.adapters.llm.openai._tools import function_tools
from assistant_service.adapters.llm.openai.assistants._events import read_event
from assistant_service.adapters.llm.openai.assistants._legacy_sdk import deprecated_api
from assistant_service.adapters.llm.openai.assistants._runs import (
    BACKEND,
    RunRecovery,
    run_call,
    thread_call,
)
from assistant_service.adapters.llm.openai.assistants._threads import (
    listed_message,
    remote_id,
    thread_conversation,
    thread_metadata,
)
from assistant_service.domain.errors import (
    UpstreamError,
)
from assistant_service.domain.leases import Lease
from assistant_service.domain.models import AssistantProfile, Conversation, Message
from assistant_service.domain.steps import ModelEvent, ModelToolCall, StepInput, UserInput
from assistant_service.domain.tools import ToolSpec


@attrs.define
class OpenAIAssistantsModel:
    """A language model on Assistants-API threads and streamed runs.

    Each profile names its remote assistant in ``remote_id``; the run uses the
    profile's model, instructions, temperature and tools when set. A step that
    asks for tools leaves its run waiting; the next step submits the outputs to
    that run. A run an earlier step left active (the run loop gave up, the
    stream broke) is cancelled before the next user message is added. On a
    thread this process knows nothing of, or when the server refuses the
    message, the latest run is checked: one this process did not start is
    cancelled only once older than ``foreign_run_grace`` seconds (another
    instance may still be driving it), else the step fails with
    ``ConflictError``. Threads created without our metadata belong to
    ``default_assistant_id``. ``client`` is shared, never closed here.

    ``as_configured`` names the remote assistants run as the server has them
    (``ASSISTANT_ID=asst_...``): their runs override nothing, and the tools
    their model calls are mapped to local ones (remote name -> local name, see
    ``retrieve_remote_assistant``). A remote assistant the server no longer
    knows fails the step with ``UpstreamError`` naming it.
    """

    _client: AsyncOpenAI = attrs.field(alias="client")
    default_assistant_id: str | None = None
    as_configured: Mapping[str, Mapping[str, str]] = attrs.field(factory=dict)
    foreign_run_grace: float = 30.0
    recovery_timeout: float = 10.0
    max_history_messages: int = 1_000
    step_timeout: float = 600.0
    max_step_events: int = 200_000
    max_remembered_threads: int = 10_000
    # thread id -> the run this process left active on it (None: none), and whether it
    # awaits tool outputs. A thread missing here is unknown: its runs are listed.
    _runs: OrderedDict[str, tuple[str | None, bool]] = attrs.field(factory=OrderedDict, init=False)

    async def open_conversation(
        self, profile: AssistantProfile, metadata: Mapping[str, str] | None = None
    ) -> Conversation:
        remote_id(profile)  # a profile that cannot run fails now, not at its first message
        given = dict(metadata or {})
        with deprecated_api():
            pending = self._threads.create(
                metadata=thread_metadata(profile, given), extra_headers=upstream_headers()
            )
        with upstream_call(BACKEND, "threads.create", assistant_id=profile.id):
            thread = await pending
        thread_id = text_field(thread, "id", backend=BACKEND, what="thread")
        self._remember(thread_id, None, awaiting_outputs=False)  # a new thread has no run
        return Conversation(thread_id, profile.id, time_field(thread, "created_at"), given)

    async def get_conversation(self, conversation_id: str) -> Conversation:
        with deprecated_api():
            pending = self._threads.retrieve(conversation_id, extra_headers=upstream_headers())
        with thread_call("threads.retrieve", conversation_id):
            thread = await pending
        return thread_conversation(thread, self.default_assistant_id)

    async def stream_step(
        self,
        conversation: Conversation,
        profile: AssistantProfile,
        step: StepInput,
        tools: Sequence[ToolSpec],
        *,
        lease: Lease | None = None,  # noqa: ARG002 -- the server keeps the thread
    ) -> AsyncIterator[ModelEvent]:
        thread_id = conversation.id
        assistant_id = remote_id(profile)
        recovery = RunRecovery(self._threads, thread_id, self.recovery_timeout)
        remembered = self._runs.get(thread_id)
        pending: Awaitable[Any]
        tool_names = self.as_configured.get(assistant_id)
        if isinstance(step, UserInput):
            await self._add_user_message(recovery, remembered, step.text)
            overrides: dict[str, Any] = {}
            if tool_names is None:
                # The profile's settings win over the remote assistant's.
                overrides = {
                    "model": profile.model or omit,
                    "instructions": profile.instructions or omit,
                    "temperature": omit if profile.temperature is None else profile.temperature,
                    "tools": cast("Any", function_tools(tools)) if tools else omit,
                }
            with deprecated_api():
                pending = self._threads.runs.create(
                    thread_id,
                    assistant_id=assistant_id,
                    stream=True,
                    extra_headers=upstream_headers(),
                    **overrides,
                )
            operation = "threads.runs.create"
        else:
            awaiting = remembered[0] if remembered and remembered[1] else None
            run_id = awaiting or await recovery.waiting_run()
            self._remember(thread_id, run_id, awaiting_outputs=False)
            outputs = [{"tool_call_id": o.call.id, "output": o.output} for o in step.outcomes]
            with deprecated_api():
                pending = self._threads.runs.submit_tool_outputs(
                    run_id,
                    thread_id=thread_id,
                    tool_outputs=cast("Any", outputs),
                    stream=True,
                    extra_headers=upstream_headers(),
                )
            operation = "threads.runs.submit_tool_outputs"
        stream = self._stream_run(thread_id, operation, pending, assistant_id)
        async with aclosing(stream) as events:
            async for event in events:
                if tool_names and isinstance(event, ModelToolCall):
                    call = event.call
                    event = ModelToolCall(  # noqa: PLW2901 -- the same event, renamed
                        attrs.evolve(call, name=tool_names.get(call.name, call.name))
                    )
                yield event

    async def history(self, conversation_id: str) -> list[Message]:
        limit = self.max_history_messages
        with deprecated_api():
            # Newest first, so a long thread yields its latest messages; reversed below.
            pages = self._threads.messages.list(
                conversation_id,
                order="desc",
                limit=min(limit, 100),
                extra_headers=upstream_headers(),
            )
        messages: list[Message] = []
        # The SDK's paging reads the body as it goes: a body that is no page fails in it too.
        with thread_call("threads.messages.list", conversation_id), reading(BACKEND, "message"):
            async for item in pages:
                message = listed_message(item)
                if message is not None:
                    messages.append(message)
                if len(messages) >= limit:
                    break
        return messages[::-1]

    async def _add_user_message(
        self, recovery: RunRecovery, remembered: tuple[str | None, bool] | None, text: str
    ) -> None:
        if remembered is None or remembered[0] is not None:
            # Unknown thread (listed), or a run of ours that may still be active (looked up).
            await recovery.clear(remembered and remembered[0], self.foreign_run_grace)
            self._remember(recovery.thread_id, None, awaiting_outputs=False)
        if not await recovery.add_message(text, refused_ok=True):
            # Refused: another process left a run on a thread we thought free.
            await recovery.clear(None, self.foreign_run_grace)
            await recovery.add_message(text, refused_ok=False)

    @property
    def _threads(self) -> Any:
        # Typed Any: the SDK's deprecated overloads are kept out of our signatures.
        return self._client.beta.threads

    async def _stream_run(
        self, thread_id: str, operation: str, pending: Awaitable[Any], assistant_id: str
    ) -> AsyncGenerator[ModelEvent, None]:
        guard = StepGuard(BACKEND, self.step_timeout, self.max_step_events)
        ended = False
        with thread_call(operation, thread_id):
            with run_call(assistant_id, created=operation == "threads.runs.create"):
                stream = await pending
            async with stream:
                while (event := await guard.next(stream, "event")) is not None:
                    if ended:
                        # Read on to the stream's end ("done"), so the SDK closes its
                        # iterators in order instead of leaving them to the collector.
                        continue
                    try:
                        update = read_event(event)
                    except MalformedEventError as error:
                        raise malformed(BACKEND, "event", str(error)) from None
                    if update.run_id is not None:
                        over = update.ended and not update.awaiting_outputs
                        run_id = None if over else update.run_id
                        self._remember(thread_id, run_id, update.awaiting_outputs)
                    if update.error is not None:
                        # A run that ended needs no recovery; after an error event
                        # the remembered run is checked before the next message.
                        raise update.error
                    for model_event in update.events:
                        yield model_event
                    ended = update.ended
        if not ended:
            raise UpstreamError(
                "the model server ended the stream before the run finished", fault=True
            )

    def _remember(self, thread_id: str, run_id: str | None, awaiting_outputs: bool) -> None:
        self._runs[thread_id] = (run_id, awaiting_outputs)
        self._runs.move_to_end(thread_id)
        while len(self._runs) > self.max_remembered_threads:
            self._runs.popitem(last=False)  # forgotten runs are found again by listing
