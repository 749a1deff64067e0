"""assistant-service: a tool-using AI assistant behind a pure domain, HTTP and WebSocket.

Embed it::

    service = bootstrap(tools={"weather": [get_forecast]}, profiles=[profile])
    conversation_id = await service.start_conversation()
    result = await service.chat(conversation_id, "What is the forecast for Paris?")
"""

from assistant_service.adapters.tools import FunctionToolRegistry, tool
from assistant_service.application.breaker_model import CircuitBreakerModel
from assistant_service.application.circuit_breaker import CircuitBreaker
from assistant_service.application.service import AssistantService
from assistant_service.domain.errors import (
    AssistantServiceError,
    ConfigurationError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
    RunInterruptedError,
    RunLimitError,
    ToolArgumentsError,
    ToolRegistrationError,
    UpstreamCircuitOpenError,
    UpstreamError,
    UpstreamUnavailableError,
)
from assistant_service.domain.events import (
    MessageCompleted,
    RunCancelled,
    RunCompleted,
    RunEvent,
    RunFailed,
    RunRequiresApproval,
    RunStarted,
    TextDelta,
    ToolApprovalRequired,
    ToolCallCompleted,
    ToolCallStarted,
)
from assistant_service.domain.models import (
    AssistantProfile,
    Conversation,
    HistoryPage,
    Message,
    Role,
    RunLimits,
    RunResult,
    RunStatus,
    Usage,
)
from assistant_service.domain.runs import ApprovalDecision, RunRecord
from assistant_service.domain.secrets import Secret
from assistant_service.domain.tools import OutcomeStatus, ToolCall, ToolOutcome, ToolSpec
from assistant_service.entrypoints.bootstrap import bootstrap

__all__ = [
    "ApprovalDecision",
    "AssistantProfile",
    "AssistantService",
    "AssistantServiceError",
    "CircuitBreaker",
    "CircuitBreakerModel",
    "ConfigurationError",
    "ConflictError",
    "Conversation",
    "FunctionToolRegistry",
    "HistoryPage",
    "InvalidInputError",
    "Message",
    "MessageCompleted",
    "NotFoundError",
    "OutcomeStatus",
    "Role",
    "RunCancelled",
    "RunCompleted",
    "RunEvent",
    "RunFailed",
    "RunInterruptedError",
    "RunLimitError",
    "RunLimits",
    "RunRecord",
    "RunRequiresApproval",
    "RunResult",
    "RunStarted",
    "RunStatus",
    "Secret",
    "TextDelta",
    "ToolApprovalRequired",
    "ToolArgumentsError",
    "ToolCall",
    "ToolCallCompleted",
    "ToolCallStarted",
    "ToolOutcome",
    "ToolRegistrationError",
    "ToolSpec",
    "UpstreamCircuitOpenError",
    "UpstreamError",
    "UpstreamUnavailableError",
    "Usage",
    "bootstrap",
    "tool",
]
