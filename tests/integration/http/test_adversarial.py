"""An adversarial pass over the edge: each test once broke it, or pins a limit it keeps."""

from __future__ import annotations

import json

import anyio
import pytest
from http_support import start

from assistant_service.adapters.llm.scripted import ScriptedStep
from assistant_service.entrypoints.http.app import edge_state
from assistant_service.entrypoints.http.correlation import from_headers

pytestmark = pytest.mark.anyio


def fail_with(error: Exception) -> ScriptedStep:
    """A step that raises ``error``: a bug in an adapter, not one of the domain's errors."""
    return ScriptedStep(error=error)  # type: ignore[arg-type]


async def test_a_client_leaving_right_after_its_frame_never_leaks_a_run_slot(app, client, probe):
    # The run task may be cancelled before its first step; its slot must still come back.
    thread_id = await start(client)
    frame = json.dumps({"thread_id": thread_id, "message": "hi"})
    for _ in range(30):
        async with client.websocket("/stream") as socket:
            await socket.send(frame)
    with anyio.fail_after(5):
        while edge_state(app).slots.active:  # noqa: ASYNC110
            await anyio.sleep(0.01)


@pytest.mark.parametrize(
    "sent",
    [
        "abc\x00",
        "\u00e9t\u00e9",
        "x" * 129,
        "\x1b[31mred",
    ],
)
async def test_a_correlation_id_cannot_inject_headers_or_log_lines(client, read_logs, sent):
    response = await client.get("/healthz", headers={"X-Correlation-ID": sent})
    echoed = response.headers["X-Correlation-ID"]
    assert echoed != sent
    assert len(echoed) == 32
    assert "Set-Cookie" not in response.headers
    [line] = [line for line in read_logs() if line["message"] == "request"]
    assert line["correlation_id"] == echoed


@pytest.mark.parametrize(
    "raw", [b"abc\r\nSet-Cookie: stolen=1", b"abc\nx", b"\xc3\xa9t\xc3\xa9", b"\xff" * 10]
)
def test_raw_header_bytes_outside_printable_ascii_get_a_new_id(raw):
    # Test clients refuse to send these; a raw ASGI server may hand them over.
    chosen = from_headers([(b"x-correlation-id", raw)])
    assert len(chosen) == 32
    assert chosen.isalnum()


async def test_a_correlation_id_of_128_printable_characters_is_kept(client):
    sent = "".join(chr(32 + i % 95) for i in range(128)).strip()
    response = await client.get("/healthz", headers={"X-Correlation-ID": sent})
    assert response.headers["X-Correlation-ID"] == sent


@pytest.mark.parametrize(
    "body",
    [
        b'{"thread_id": "T", "message": NaN}',
        b'{"thread_id": "T", "message": Infinity}',
        b'{"thread_id": "T", "message": 1e999}',
        b'{"thread_id": -Infinity, "message": "hi"}',
        b'{"thread_id": "T", "message": "hi", "extra": ' + b"9" * 4_000 + b"}",
        b'{"thread_id": "T", "message": "a\\u0000b\\udfff"}',
        b'{"thread_id": {"$ne": null}, "message": "hi"}',
    ],
)
async def test_odd_json_values_are_client_errors(client, body):
    thread_id = await start(client)
    body = body.replace(b'"T"', json.dumps(thread_id).encode())
    response = await client.post("/chat", data=body, headers={"Content-Type": "application/json"})
    assert response.status_code in {400, 413, 422}, await response.get_data()
    error = (await response.get_json())["error"]
    assert error["code"] != "internal_error"


@pytest.mark.parametrize(
    "assistant_id", ["../etc/passwd", "a\x00b", "caf\u00e9", "a b", "%", "x" * 128]
)
async def test_odd_assistant_ids_on_start_are_client_errors(client, assistant_id):
    response = await client.get("/start", query_string={"assistant_id": assistant_id})
    assert response.status_code in {404, 422}, await response.get_data()
    assert (await response.get_json())["error"]["code"] != "internal_error"


async def test_head_and_options_are_answered_without_a_run(client):
    head = await client.head("/healthz")
    assert head.status_code == 200  # (the server, not the app, drops a HEAD body)
    options = await client.options("/chat")
    assert options.status_code == 200
    assert "POST" in options.headers["Allow"]
    for method in ("HEAD", "PUT", "DELETE"):
        response = await client.open("/chat", method=method)
        assert response.status_code == 405
        if method != "HEAD":
            assert (await response.get_json())["error"]["code"] == "method_not_allowed"


async def test_a_key_in_an_unexpected_error_never_reaches_a_log_line_or_the_client(
    client, model, read_logs
):
    key = "sk-live-0123456789abcdefXYZ"
    thread_id = await start(client)

    class LeakyError(Exception):
        pass

    for accept in ("application/json", "text/event-stream"):
        model.script(fail_with(LeakyError(f"upstream refused key {key}")))
        response = await client.post(
            "/chat", json={"thread_id": thread_id, "message": "hi"}, headers={"Accept": accept}
        )
        assert key not in (await response.get_data(as_text=True))
    async with client.websocket("/stream") as socket:
        model.script(fail_with(LeakyError(f"upstream refused key {key}")))
        await socket.send(json.dumps({"thread_id": thread_id, "message": "hi"}))
        with anyio.fail_after(5):
            event = json.loads(await socket.receive())
            while event["type"] != "error":
                event = json.loads(await socket.receive())
        assert key not in json.dumps(event)
    lines = read_logs()
    assert any("LeakyError" in json.dumps(line) for line in lines)
    assert not [line for line in lines if key in json.dumps(line)]


async def test_a_duplicate_key_is_refused_not_silently_resolved(client):
    # A proxy reading the first value and the app the last would disagree on the request.
    thread_id = await start(client)
    body = '{"thread_id": 3, "message": "hi", "thread_id": ' + json.dumps(thread_id) + "}"
    response = await client.post("/chat", data=body)
    assert response.status_code == 400
    assert "repeats the key" in (await response.get_json())["error"]["message"]
    async with client.websocket("/stream") as socket:
        await socket.send(body)
        with anyio.fail_after(5):
            event = json.loads(await socket.receive())
    assert event["code"] == "malformed_request"
