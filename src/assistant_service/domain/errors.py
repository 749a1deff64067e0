"""The package's exceptions: one base class, a short hierarchy.

::

    AssistantServiceError
    ├── NotFoundError             unknown conversation, assistant, tool or secret
    ├── ConflictError             a run is already active on the conversation
    │   └── LeaseLostError        a run's lease was taken over; its write was refused
    ├── InvalidInputError         a message, id or field the caller must fix
    ├── ConfigurationError        settings, profiles or tools that cannot work
    │   └── ToolRegistrationError a function that cannot become a tool
    ├── ToolArgumentsError        a tool call whose arguments do not fit (never escapes a run)
    ├── RunLimitError             a run that hit its tool-round limit
    ├── RunInterruptedError       the run's process stopped before the run ended
    └── UpstreamError             the language model (or another backend) failed
        └── UpstreamUnavailableError   retryable: rate limits, overload; may carry retry_after
            ├── UpstreamCircuitOpenError     the upstream failed too often: calls fail fast a while
            └── StateStoreUnavailableError   the shared state store cannot be reached

Each class has a stable ``code`` that the HTTP edge puts in error bodies.
"""

from __future__ import annotations

from collections.abc import Mapping


class AssistantServiceError(Exception):
    """Base class of every error this package raises on purpose."""

    code = "internal"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFoundError(AssistantServiceError):
    """Something named by the caller does not exist."""

    code = "not_found"

    def __init__(self, kind: str, identifier: str) -> None:
        super().__init__(f"unknown {kind}: {identifier!r}")
        self.kind = kind
        self.identifier = identifier


class ConflictError(AssistantServiceError):
    """A run is already active on this conversation."""

    code = "conflict"


class LeaseLostError(ConflictError):
    """A run no longer holds its conversation's lease: its write or renewal was refused.

    Another run took the lease over (a fenced write), or the lease lapsed before it
    was renewed. Nothing was written; the run must stop.
    """

    code = "lease_lost"


class InvalidInputError(AssistantServiceError):
    """Input the caller must fix; ``fields`` maps each bad field to what is wrong."""

    code = "invalid_input"

    def __init__(self, message: str, fields: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.fields: Mapping[str, str] = dict(fields or {})


class ConfigurationError(AssistantServiceError):
    """Settings, profiles or tools that cannot work as given."""

    code = "configuration_error"


class ToolRegistrationError(ConfigurationError):
    """A function that cannot become a tool; the message names it and the parameter."""

    code = "tool_registration_error"


class ToolArgumentsError(AssistantServiceError):
    """The model's arguments for a tool are not valid JSON or do not match its schema."""

    code = "invalid_tool_arguments"


class RunLimitError(AssistantServiceError):
    """A run asked for more tool rounds than its assistant profile allows."""

    code = "run_limit_exceeded"


class UpstreamError(AssistantServiceError):
    """The language model, or another backend, answered with an error.

    ``fault`` tells whether the upstream itself failed (a 5xx, a timeout, a lost
    connection, a reply it could not have meant) rather than refusing this
    request (a 4xx, a rate limit, a content filter): a circuit breaker counts
    faults only. An adapter sets it where it knows (a subclass may set it for all
    its errors); it is ``False`` otherwise.
    """

    code = "upstream_error"
    fault = False

    def __init__(self, message: str, *, fault: bool | None = None) -> None:
        super().__init__(message)
        if fault is not None:
            self.fault = fault


class UpstreamUnavailableError(UpstreamError):
    """The upstream is overloaded or rate limited; retrying later may work."""

    code = "upstream_unavailable"

    def __init__(
        self, message: str, retry_after: float | None = None, *, fault: bool | None = None
    ) -> None:
        super().__init__(message, fault=fault)
        self.retry_after = retry_after


class UpstreamCircuitOpenError(UpstreamUnavailableError):
    """The upstream failed too many times in a row: calls fail fast, without reaching it.

    ``retry_after`` is the number of seconds until a call may go through again.
    """

    code = "upstream_circuit_open"


class StateStoreUnavailableError(UpstreamUnavailableError):
    """The shared state store (Redis, Firestore) cannot be reached; retrying later may work.

    The message names the store and what failed, never a password or key.
    """

    code = "state_store_unavailable"


class RunInterruptedError(AssistantServiceError):
    """The run's process stopped (shut down or died) before the run ended."""

    code = "interrupted"


def restore_error(
    code: str, message: str, retry_after: float | None = None
) -> AssistantServiceError:
    """An error of the class whose ``code`` is ``code``, as it was recorded (a replayed run).

    Only its ``code``, ``message`` and ``retry_after`` come back; an unknown code
    gives the base class with that code.
    """
    kind = _ERROR_CLASSES.get(code)
    if kind is None:
        error = AssistantServiceError(message)
        error.code = code
        return error
    # Bypass each class's own constructor: their arguments are not recorded.
    restored: AssistantServiceError = kind.__new__(kind)
    AssistantServiceError.__init__(restored, message)
    if isinstance(restored, UpstreamUnavailableError):
        restored.retry_after = retry_after
    if isinstance(restored, InvalidInputError):
        restored.fields = {}
    return restored


def _error_classes() -> dict[str, type[AssistantServiceError]]:
    found: dict[str, type[AssistantServiceError]] = {}
    pending: list[type[AssistantServiceError]] = [AssistantServiceError]
    while pending:
        kind = pending.pop()
        found.setdefault(kind.code, kind)
        pending.extend(kind.__subclasses__())
    return found


_ERROR_CLASSES = _error_classes()
