"""History pages: walking every page, the opaque cursor, and what is refused."""

from __future__ import annotations

import base64
import math

import pytest

from assistant_service.adapters.llm.scripted import reply
from assistant_service.application.history import decode_cursor, encode_cursor
from assistant_service.domain.errors import InvalidInputError, NotFoundError
from assistant_service.domain.models import HistoryPage, Message, Role

pytestmark = pytest.mark.anyio


def b64(text: str, *, padded: bool = False) -> str:
    encoded = base64.urlsafe_b64encode(text.encode()).decode()
    return encoded if padded else encoded.rstrip("=")


async def conversation_with(harness, count: int) -> tuple[str, list[Message]]:
    """A conversation whose history holds ``count`` messages, user and assistant in turn."""
    service = harness.service()
    conversation_id = await service.start_conversation()
    items = [
        {"type": "message", "role": "user" if n % 2 == 0 else "assistant", "text": f"m{n}"}
        for n in range(count)
    ]
    await harness.model.store.append(conversation_id, items)
    expected = [Message(Role(item["role"]), item["text"]) for item in items]
    return conversation_id, expected


async def walk(service, conversation_id: str, limit: int) -> list[HistoryPage]:
    pages = [await service.history_page(conversation_id, limit=limit)]
    while pages[-1].has_more:
        cursor = pages[-1].next_cursor
        pages.append(await service.history_page(conversation_id, limit=limit, cursor=cursor))
        assert len(pages) <= 1_000, "the cursors never end"
    return pages


@pytest.mark.parametrize(
    ("count", "limit"),
    [(0, 5), (1, 5), (5, 5), (6, 5), (47, 10), (100, 100), (101, 100), (7, 1)],
)
async def test_following_the_cursors_walks_the_whole_history_once_oldest_first(
    harness, count, limit
):
    conversation_id, expected = await conversation_with(harness, count)
    service = harness.service()
    pages = await walk(service, conversation_id, limit)
    assert [m for page in pages for m in page.messages] == expected
    assert len(pages) == max(1, math.ceil(count / limit))
    assert all(len(page.messages) == limit for page in pages[:-1])
    assert [page.has_more for page in pages] == [True] * (len(pages) - 1) + [False]
    assert pages[-1].next_cursor is None


async def test_the_default_page_is_the_oldest_twenty(harness):
    conversation_id, expected = await conversation_with(harness, 25)
    page = await harness.service().history_page(conversation_id)
    assert list(page.messages) == expected[:20]
    assert page.has_more


async def test_pages_of_real_turns_hold_both_roles_in_order(harness):
    service = harness.service()
    conversation_id = await service.start_conversation()
    harness.model.script(reply("first answer"), reply("second answer"))
    await service.chat(conversation_id, "first question")
    await service.chat(conversation_id, "second question")
    first = await service.history_page(conversation_id, limit=3)
    second = await service.history_page(conversation_id, limit=3, cursor=first.next_cursor)
    assert first.messages == (
        Message(Role.USER, "first question"),
        Message(Role.ASSISTANT, "first answer"),
        Message(Role.USER, "second question"),
    )
    assert second == HistoryPage((Message(Role.ASSISTANT, "second answer"),))
    assert not second.has_more


async def test_a_cursor_keeps_its_place_while_the_history_grows(harness):
    conversation_id, expected = await conversation_with(harness, 4)
    service = harness.service()
    first = await service.history_page(conversation_id, limit=3)
    harness.model.script(reply("later answer"))
    await service.chat(conversation_id, "later question")
    rest = await service.history_page(conversation_id, limit=3, cursor=first.next_cursor)
    assert rest.messages == (
        expected[3],
        Message(Role.USER, "later question"),
        Message(Role.ASSISTANT, "later answer"),
    )


@pytest.mark.parametrize("offset", [1, 20, 99, 12_345, 10**17])
def test_a_cursor_is_url_safe_and_decodes_to_its_offset(offset):
    cursor = encode_cursor(offset)
    assert set(cursor) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert decode_cursor(cursor) == offset


@pytest.mark.parametrize(
    "cursor",
    [
        pytest.param("", id="empty"),
        pytest.param("null", id="null"),
        pytest.param("42", id="bare-number"),
        pytest.param(b64("v1:0"), id="offset-zero"),
        pytest.param(b64("v1:-3"), id="negative"),
        pytest.param(b64("v1:+3"), id="signed"),
        pytest.param(b64("v1:03"), id="leading-zero"),
        pytest.param(b64("v1: 3"), id="space"),
        pytest.param(b64("v1:3x"), id="trailing-junk"),
        pytest.param(b64("v2:3"), id="other-version"),
        pytest.param(b64("3"), id="no-version"),
        pytest.param(b64("v1:3", padded=True), id="padded"),
        pytest.param(encode_cursor(3) + "!", id="bad-character"),
        pytest.param(encode_cursor(3).replace("-", "+") + "+/", id="standard-alphabet"),
        pytest.param(b64("v1:" + "9" * 19), id="too-many-digits"),
        pytest.param("A" * 10_000, id="huge"),
        pytest.param(b64("v1:٣"), id="non-ascii-digit"),
        pytest.param("djE6Mx", id="stray-low-bits"),  # decodes to "v1:3" but is not ours
        pytest.param("djE6M\u00e9", id="non-ascii"),
    ],
)
async def test_a_malformed_or_forged_cursor_is_invalid_input_naming_the_cursor(harness, cursor):
    conversation_id, _ = await conversation_with(harness, 10)
    with pytest.raises(InvalidInputError) as caught:
        await harness.service().history_page(conversation_id, limit=2, cursor=cursor)
    assert set(caught.value.fields) == {"cursor"}


async def test_a_cursor_past_the_end_of_the_history_is_refused(harness):
    conversation_id, _ = await conversation_with(harness, 3)
    service = harness.service()
    # At the end: an empty last page (a history can shrink under a cursor).
    assert await service.history_page(conversation_id, cursor=encode_cursor(3)) == HistoryPage(())
    with pytest.raises(InvalidInputError) as caught:
        await service.history_page(conversation_id, cursor=encode_cursor(4))
    assert set(caught.value.fields) == {"cursor"}


@pytest.mark.parametrize("limit", [0, -1, 101, 10**9, True, 2.0, "5", None])
async def test_a_page_size_outside_1_to_100_is_invalid_input_naming_the_limit(harness, limit):
    conversation_id, _ = await conversation_with(harness, 3)
    with pytest.raises(InvalidInputError) as caught:
        await harness.service().history_page(conversation_id, limit=limit)
    assert set(caught.value.fields) == {"limit"}
    assert "1 to 100" in caught.value.fields["limit"]


@pytest.mark.parametrize("limit", [1, 100])
async def test_the_page_size_bounds_are_accepted(harness, limit):
    conversation_id, expected = await conversation_with(harness, 150)
    page = await harness.service().history_page(conversation_id, limit=limit)
    assert list(page.messages) == expected[:limit]


async def test_an_unknown_or_malformed_conversation_is_refused(harness):
    service = harness.service()
    with pytest.raises(NotFoundError, match="conversation"):
        await service.history_page("conv_missing")
    with pytest.raises(InvalidInputError) as caught:
        await service.history_page("not an id")
    assert set(caught.value.fields) == {"conversation_id"}
