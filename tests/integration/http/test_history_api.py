"""``GET /threads/<thread_id>/messages`` in-process: pages, cursors and each refusal."""

from __future__ import annotations

import pytest
from http_support import start

from assistant_service.adapters.llm.scripted import reply
from assistant_service.application.history import encode_cursor

pytestmark = pytest.mark.anyio


async def two_turns(client, model) -> str:
    thread_id = await start(client)
    model.script(reply("Hello!"), reply("Sunny."))
    for message in ("hi", "weather?"):
        response = await client.post("/chat", json={"thread_id": thread_id, "message": message})
        assert response.status_code == 200, await response.get_data()
    return thread_id


async def get_messages(client, thread_id: str, query: str = "", **headers: str):
    response = await client.get(f"/threads/{thread_id}/messages{query}", headers=headers)
    return response, await response.get_json()


def assert_invalid(response, body, fields: set[str]) -> None:
    assert response.status_code == 422, body
    assert body["error"]["code"] == "invalid_input"
    assert set(body["error"]["fields"]) == fields
    assert body["error"]["correlation_id"] == response.headers["X-Correlation-ID"]


async def test_the_history_of_two_turns_is_one_page_oldest_first(client, model):
    thread_id = await two_turns(client, model)
    response, body = await get_messages(client, thread_id, **{"X-Correlation-ID": "hist-1"})
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["X-Correlation-ID"] == "hist-1"
    assert body == {
        "thread_id": thread_id,
        "messages": [
            {"role": "user", "text": "hi"},
            {"role": "assistant", "text": "Hello!"},
            {"role": "user", "text": "weather?"},
            {"role": "assistant", "text": "Sunny."},
        ],
        "has_more": False,
        "next_cursor": None,
    }


async def test_a_new_thread_has_an_empty_last_page(client):
    thread_id = await start(client)
    response, body = await get_messages(client, thread_id)
    assert response.status_code == 200
    assert body == {"thread_id": thread_id, "messages": [], "has_more": False, "next_cursor": None}


@pytest.mark.parametrize("limit", [1, 3, 4, 5])
async def test_following_next_cursor_walks_every_message_once(client, model, limit):
    thread_id = await two_turns(client, model)
    response, body = await get_messages(client, thread_id, f"?limit={limit}")
    pages = [body]
    while body["has_more"]:
        assert response.status_code == 200
        response, body = await get_messages(
            client, thread_id, f"?limit={limit}&cursor={body['next_cursor']}"
        )
        pages.append(body)
    texts = [m["text"] for page in pages for m in page["messages"]]
    assert texts == ["hi", "Hello!", "weather?", "Sunny."]
    assert len(pages) == -(-4 // limit)
    assert pages[-1]["next_cursor"] is None
    assert all(page["next_cursor"] for page in pages[:-1])


async def test_the_default_page_size_is_twenty(client, model):
    thread_id = await start(client)
    model.script(*(reply(f"answer {n}") for n in range(11)))
    for n in range(11):
        await client.post("/chat", json={"thread_id": thread_id, "message": f"question {n}"})
    _, first = await get_messages(client, thread_id)
    assert len(first["messages"]) == 20
    assert first["has_more"] is True
    _, rest = await get_messages(client, thread_id, f"?cursor={first['next_cursor']}")
    assert [m["text"] for m in rest["messages"]] == ["question 10", "answer 10"]


async def test_other_query_parameters_are_ignored(client, model):
    thread_id = await two_turns(client, model)
    response, body = await get_messages(client, thread_id, "?limit=2&_=1700000000")
    assert response.status_code == 200
    assert len(body["messages"]) == 2


async def test_an_unknown_thread_is_404_with_the_correlation_id(client):
    response, body = await get_messages(client, "conv_nobody", **{"X-Correlation-ID": "hist-404"})
    assert response.status_code == 404
    assert body["error"]["code"] == "not_found"
    assert body["error"]["correlation_id"] == "hist-404"


@pytest.mark.parametrize("thread_id", ["a%20b", "x" * 129, "conv.1", "%00"])
async def test_a_malformed_thread_id_is_422_naming_thread_id(client, thread_id):
    response, body = await get_messages(client, thread_id)
    assert_invalid(response, body, {"thread_id"})


@pytest.mark.parametrize(
    "query",
    [
        "?limit=0",
        "?limit=101",
        "?limit=1000000000000",
        "?limit=-1",
        "?limit=+5",
        "?limit=1.5",
        "?limit=1e2",
        "?limit=",
        "?limit=abc",
        "?limit=%D9%A3",  # an Arabic-Indic three: int() would take it
        "?limit=1_0",  # int() would take it too
        "?limit=%205",
        "?limit=5&limit=6",
    ],
)
async def test_a_bad_limit_is_422_naming_limit(client, model, query):
    thread_id = await two_turns(client, model)
    response, body = await get_messages(client, thread_id, query)
    assert_invalid(response, body, {"limit"})


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage",
        "",
        "djE6MA",  # v1:0, never issued
        encode_cursor(5),  # past the end of four messages
        encode_cursor(2) + "%3D%3D",  # padded
        "%F0%9F%92%A5",
        "A" * 5000,
    ],
)
async def test_a_malformed_or_forged_cursor_is_422_naming_cursor(client, model, cursor):
    thread_id = await two_turns(client, model)
    response, body = await get_messages(client, thread_id, f"?limit=2&cursor={cursor}")
    assert_invalid(response, body, {"cursor"})


async def test_a_cursor_given_twice_is_422(client, model):
    thread_id = await two_turns(client, model)
    cursor = encode_cursor(2)
    response, body = await get_messages(client, thread_id, f"?cursor={cursor}&cursor={cursor}")
    assert_invalid(response, body, {"cursor"})


async def test_a_cursor_at_the_end_gives_an_empty_last_page(client, model):
    thread_id = await two_turns(client, model)
    response, body = await get_messages(client, thread_id, f"?cursor={encode_cursor(4)}")
    assert response.status_code == 200
    assert (body["messages"], body["has_more"], body["next_cursor"]) == ([], False, None)


async def test_the_history_route_only_reads(client, model):
    thread_id = await two_turns(client, model)
    response = await client.post(f"/threads/{thread_id}/messages", json={})
    assert response.status_code == 405
    assert (await response.get_json())["error"]["correlation_id"]
