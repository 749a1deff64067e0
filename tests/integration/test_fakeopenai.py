"""The fake OpenAI server speaks the protocol the real SDK parses."""

from __future__ import annotations

import openai
import pytest

from assistant_service.adapters.llm.openai._client import make_openai_client
from fakeopenai import API_KEY, Raw, SSEReply, error_reply, event
from fakeopenai import turns as t

pytestmark = pytest.mark.anyio


async def test_sdk_parses_a_streamed_text_turn(fake_openai, openai_client):
    fake_openai.responses.turn(t.text("Hello there", deltas=["Hel", "lo there"]))
    stream = await openai_client.responses.create(model="m", input="hi", stream=True)
    kinds = [e.type async for e in stream]
    assert kinds[0] == "response.created"
    assert kinds.count("response.output_text.delta") == 2
    assert kinds[-1] == "response.completed"


async def test_sdk_parses_function_call_events(fake_openai, openai_client):
    fake_openai.responses.turn(t.calls(t.call("a__b", '{"x": 1}', pieces=['{"x"', ": 1}"])))
    stream = await openai_client.responses.create(model="m", input="hi", stream=True)
    events = [e async for e in stream]
    done = [e for e in events if e.type == "response.output_item.done"]
    assert done[0].item.type == "function_call"
    assert done[0].item.arguments == '{"x": 1}'


async def test_a_dropped_stream_is_a_connection_error_in_the_sdk(fake_openai, openai_client):
    fake_openai.responses.turn(t.text("a b c d", drop_after=4))
    stream = await openai_client.responses.create(model="m", input="hi", stream=True)
    with pytest.raises(openai.APIConnectionError):
        async for _ in stream:
            pass


async def test_a_malformed_event_is_a_json_error_in_the_sdk(fake_openai, openai_client):
    fake_openai.script(
        "responses.create", SSEReply((event("response.created"), Raw(b"data: {x\n\n")))
    )
    stream = await openai_client.responses.create(model="m", input="hi", stream=True)
    with pytest.raises(ValueError, match="property name"):
        async for _ in stream:
            pass


async def test_the_sdk_retries_a_429_and_honours_retry_after_ms(openai_transport, fake_openai):
    fake_openai.script(
        "responses.create",
        error_reply(429, "slow down", headers={"retry-after-ms": "10"}),
        error_reply(429, "slow down", headers={"retry-after-ms": "10"}),
    )
    fake_openai.responses.turn(t.text("ok"))
    client = make_openai_client(
        transport=openai_transport, api_key=API_KEY, base_url=fake_openai.base_url, max_retries=2
    )
    async with client:
        stream = await client.responses.create(model="m", input="hi", stream=True)
        assert [e.type async for e in stream][-1] == "response.completed"
    assert len(fake_openai.requests_to("responses.create")) == 3
