"""What every instance knows of a run while it goes on and after it ended."""

from __future__ import annotations

import attrs

from assistant_service.domain.models import RunResult, RunStatus
from assistant_service.domain.tools import ToolCall, ToolOutcome


@attrs.frozen
class ApprovalDecision:
    """A person's answer to one call that waits for approval."""

    call_id: str
    approve: bool
    reason: str | None = None


@attrs.frozen
class RunRecord:
    """One run: its conversation, where it is, and how it ended.

    ``result`` is set once the run ended (``error_code`` and ``error_message``
    too when it failed). A run that stopped for approvals keeps its pending
    calls in ``result.pending`` until a decision continues it (``resumed_by``,
    the continuing run) or a new message on the conversation denies them
    (``resumed_by`` is then that message's run).
    """

    run_id: str
    conversation_id: str
    status: RunStatus = RunStatus.IN_PROGRESS
    result: RunResult | None = None
    error_code: str | None = None
    error_message: str | None = None
    resumes: str | None = None
    resumed_by: str | None = None
    # The round the run stopped in for approvals: every call, in order, and the
    # outcomes of those that needed none (they ran already).
    stopped_round: tuple[ToolCall, ...] = ()
    held_outcomes: tuple[ToolOutcome, ...] = ()

    @property
    def awaits_decision(self) -> bool:
        """Stopped for approvals, and nothing continued or superseded it yet."""
        return self.status is RunStatus.REQUIRES_APPROVAL and self.resumed_by is None
