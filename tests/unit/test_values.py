"""Domain values and the in-memory adapters' own rules."""

from __future__ import annotations

import pickle

import pytest

from assistant_service.adapters.secrets.memory import (
    EnvironmentSecretRepository,
    InMemorySecretRepository,
)
from assistant_service.adapters.state.memory import InMemoryStateStore
from assistant_service.domain.errors import (
    InvalidInputError,
    NotFoundError,
    UpstreamUnavailableError,
)
from assistant_service.domain.models import Conversation, RunLimits
from assistant_service.domain.secrets import Secret


def test_a_secret_never_shows_its_value():
    secret = Secret("openai-api-key", "sk-very-secret")
    for text in (repr(secret), str(secret), f"{secret}", repr([secret]), repr({"k": secret})):
        assert "sk-very-secret" not in text
    assert secret.reveal() == "sk-very-secret"
    with pytest.raises(TypeError):
        pickle.dumps(secret)


@pytest.mark.anyio
async def test_secret_repositories_show_names_not_values():
    memory = InMemorySecretRepository(values={"api-key": "sk-hidden"})
    assert "sk-hidden" not in repr(memory)
    assert (await memory.get("api-key")).reveal() == "sk-hidden"
    environment = EnvironmentSecretRepository(environ={"OPENAI_API_KEY": "sk-env", "EMPTY": ""})
    assert (await environment.get("openai-api-key")).reveal() == "sk-env"
    assert "sk-env" not in repr(environment)
    with pytest.raises(NotFoundError, match="empty"):
        await environment.get("empty")


@pytest.mark.parametrize(
    "field", ["max_tool_rounds", "tool_timeout", "max_message_length", "max_tool_calls_per_round"]
)
def test_limits_must_be_positive(field):
    with pytest.raises(ValueError, match=field):
        RunLimits(**{field: 0})


def test_upstream_unavailable_carries_retry_after():
    error = UpstreamUnavailableError("slow down", retry_after=2.5)
    assert (error.code, error.retry_after, error.message) == (
        "upstream_unavailable",
        2.5,
        "slow down",
    )


@pytest.mark.anyio
async def test_the_memory_store_is_bounded_and_copies_items():
    from datetime import datetime, timezone  # noqa: PLC0415

    store = InMemoryStateStore(max_conversations=2, max_items=3)
    now = datetime.now(timezone.utc)
    for name in ("a", "b", "c"):
        await store.create(Conversation(name, "assistant", now))
    with pytest.raises(NotFoundError):
        await store.get("a")  # the oldest went first
    item = {"n": [1]}
    await store.append("b", [item, {"n": 2}, {"n": 3}, {"n": 4}])
    item["n"].append(99)
    assert await store.items("b") == [{"n": 2}, {"n": 3}, {"n": 4}]
    with pytest.raises(InvalidInputError, match="JSON"):
        await store.append("b", [{"bad": object()}])
    assert len(await store.items("b")) == 3
    with pytest.raises(InvalidInputError, match="exists"):
        await store.create(Conversation("b", "assistant", now))
