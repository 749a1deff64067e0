"""Fixtures of the integration tests: the fake OpenAI server and SDK clients pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

openai = pytest.importorskip("openai")

from assistant_service.adapters.llm.openai._client import make_openai_client  # noqa: E402
from fakeopenai import API_KEY, FakeOpenAI, start_fake_openai  # noqa: E402


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    """A fresh fake OpenAI server on 127.0.0.1 (port 0), stopped after the test."""
    fake = start_fake_openai()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
async def openai_client(fake_openai: FakeOpenAI) -> AsyncIterator[openai.AsyncOpenAI]:
    """An ``AsyncOpenAI`` client for the fake: no retries, short timeouts."""
    client = make_openai_client(
        api_key=API_KEY, base_url=fake_openai.base_url, max_retries=0, timeout=5.0
    )
    try:
        yield client
    finally:
        await client.close()
