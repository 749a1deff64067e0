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


@pytest.fixture(params=["httpx", "aiohttp"])
def openai_transport(request: pytest.FixtureRequest) -> str:
    """Each HTTP transport the SDK's client can run on (``make_openai_client(transport=)``)."""
    return str(request.param)


@pytest.fixture
async def openai_client(
    fake_openai: FakeOpenAI, openai_transport: str
) -> AsyncIterator[openai.AsyncOpenAI]:
    """An ``AsyncOpenAI`` client for the fake, on each transport: no retries, short timeouts."""
    client = make_openai_client(
        api_key=API_KEY,
        base_url=fake_openai.base_url,
        max_retries=0,
        timeout=5.0,
        transport=openai_transport,  # type: ignore[arg-type]
    )
    try:
        yield client
    finally:
        await client.close()
