"""Hostile and clumsy input: never a 500, always a JSON error, sockets stay usable."""

from __future__ import annotations

import json

import anyio
import pytest
from http_support import start
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.anyio

CLIENT_ERRORS = {400, 404, 413, 422}

BODIES = [
    b"",
    b"{",
    b"null",
    b"42",
    b'"a string"',
    b"[]",
    b"\xff\xfe\x00",
    b'{"thread_id": "a", "message": "hi"',
    b'{"thread_id": "a", "message": "hi"}}',
    b'{"thread_id": ["a"], "message": {"x": 1}}',
    b'{"thread_id": null, "message": null}',
    b'{"thread_id": true, "message": 1.5}',
    b'{"thread_id": "a", "message": "\\ud800"}',
    b'{"thread_id": "\\u0000", "message": "hi"}',
    b"[" * 5_000,
    b'{"thread_id": "a", "message": ' + b"1" * 3_000 + b"}",
    b'{"thread_id": "a", "message": "hi", "thread_id": 3}',
]


@pytest.mark.parametrize("body", BODIES)
async def test_malformed_bodies_are_client_errors(client, body):
    response = await client.post("/chat", data=body, headers={"Content-Type": "application/json"})
    assert response.status_code in CLIENT_ERRORS, (body, await response.get_data())
    error = (await response.get_json())["error"]
    assert error["code"] != "internal_error"
    assert error["correlation_id"] == response.headers["X-Correlation-ID"]


@pytest.mark.parametrize(
    "message",
    [
        "h\u00e9llo w\u00f6rld \u4f60\u597d \U0001f600",
        "tabs\tand\nnewlines\r\n",
        "nul \u0000 bell \u0007 escape \u001b[31m",
        "\u202e right-to-left override",
        "\ufeff bom and zero\u200bwidth",
    ],
)
async def test_unicode_and_control_characters_are_answered(client, message):
    thread_id = await start(client)
    response = await client.post("/chat", json={"thread_id": thread_id, "message": message})
    assert response.status_code == 200
    # The offline model echoes the message's repr: it arrived intact.
    assert repr(message) in (await response.get_json())["responses"][0]
    response = await client.post(
        "/chat",
        json={"thread_id": thread_id, "message": message},
        headers={"Accept": "text/event-stream"},
    )
    assert response.status_code == 200
    assert (await response.get_data()).rstrip().endswith(b"}")


async def test_whitespace_only_and_empty_messages_are_422(client):
    thread_id = await start(client)
    for message in ("", "   \n\t"):
        response = await client.post("/chat", json={"thread_id": thread_id, "message": message})
        assert response.status_code == 422
        assert "message" in (await response.get_json())["error"]["fields"]


@pytest.mark.parametrize(
    "thread_id", ["", " ", "a" * 129, "conv/../x", "conv_\u00e9", "conv x", "conv_%00"]
)
async def test_invalid_thread_ids_are_422(client, thread_id):
    response = await client.post("/chat", json={"thread_id": thread_id, "message": "hi"})
    assert response.status_code == 422
    assert list((await response.get_json())["error"]["fields"]) == ["thread_id"]


async def test_oversized_query_values_are_refused(client):
    response = await client.get("/start", query_string={"assistant_id": "a" * 1_000})
    assert response.status_code == 422


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=10), children, max_size=3)
    ),
    max_leaves=8,
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    body=st.one_of(
        json_values.map(lambda value: json.dumps(value).encode()),
        st.fixed_dictionaries({"thread_id": json_values, "message": json_values}).map(
            lambda value: json.dumps(value).encode()
        ),
        st.binary(max_size=64),
    )
)
async def test_no_body_makes_a_500(client, body):
    response = await client.post("/chat", data=body)
    assert response.status_code in CLIENT_ERRORS, (body, await response.get_data())


@pytest.mark.parametrize(
    "frame",
    # (An empty binary frame is tested over a real socket: Quart's test client cannot send one.)
    [b"\x80\x81", b"{}", "", " ", "{}", "null", '{"thread_id": "a"}', "\ud83d", "[" * 1_000],
)
async def test_bad_frames_never_close_the_socket(client, model, frame):
    thread_id = await start(client)
    async with client.websocket("/stream") as socket:
        for _ in range(3):  # the same bad frame, again and again
            await socket.send(frame)
            with anyio.fail_after(5):
                event = json.loads(await socket.receive())
            assert event["type"] == "error"
            assert event["code"] != "internal_error"
        await socket.send(json.dumps({"thread_id": thread_id, "message": "still there?"}))
        with anyio.fail_after(5):
            while (event := json.loads(await socket.receive()))["type"] != "run.completed":
                assert event["type"] != "error"
