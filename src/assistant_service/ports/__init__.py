"""Ports: the interfaces the domain needs from the outside world."""

from assistant_service.ports.config import AssistantConfigRepository
from assistant_service.ports.conversations import ConversationStore, StateStoreHealth
from assistant_service.ports.language_model import LanguageModel
from assistant_service.ports.run_state import (
    PendingCalls,
    RunEventLog,
    RunLock,
    RunRegistry,
    RunState,
    StateStore,
)
from assistant_service.ports.secrets import SecretRepository
from assistant_service.ports.tokens import OneTimeTokens
from assistant_service.ports.tools import ToolRegistry

__all__ = [
    "AssistantConfigRepository",
    "ConversationStore",
    "LanguageModel",
    "OneTimeTokens",
    "PendingCalls",
    "RunEventLog",
    "RunLock",
    "RunRegistry",
    "RunState",
    "SecretRepository",
    "StateStore",
    "StateStoreHealth",
    "ToolRegistry",
]
