"""Chat Completions history: whatever the store kept, the request is one a server accepts."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from assistant_service.adapters.llm.openai.chat._history import (
    history_messages,
    pending_calls,
    request_messages,
)
from assistant_service.domain.models import Message, Role
from assistant_service.domain.tools import INTERRUPTED_OUTPUT


def user(text="hi"):
    return {"role": "user", "content": text}


def assistant(text="ok", *calls):
    item = {"role": "assistant", "content": text}
    if calls:
        item["tool_calls"] = [
            {"id": c, "type": "function", "function": {"name": "t__f", "arguments": "{}"}}
            for c in calls
        ]
    return item


def tool(call_id, output="42"):
    return {"role": "tool", "tool_call_id": call_id, "content": output}


def assert_valid(messages):
    """What OpenAI-compatible servers check: tool replies answer the calls just before them."""
    assert not messages or messages[0]["role"] == "user"
    waiting: list[str] = []
    for message in messages:
        if message["role"] == "tool":
            assert message["tool_call_id"] in waiting, (message, waiting)
            waiting.remove(message["tool_call_id"])
            continue
        assert waiting == [], f"calls {waiting} unanswered before {message}"
        waiting = [c["id"] for c in message.get("tool_calls", [])]
    assert waiting == []


def test_a_clean_history_is_sent_as_stored():
    items = [user(), assistant(None, "c1", "c2"), tool("c1"), tool("c2"), assistant("done")]
    assert request_messages(items) == items


def test_a_call_without_reply_is_answered_as_interrupted_before_the_next_message():
    items = [user(), assistant(None, "c1", "c2"), tool("c2"), user("again")]
    messages = request_messages(items)
    assert_valid(messages)
    assert messages[2:4] == [tool("c2"), tool("c1", INTERRUPTED_OUTPUT)]


def test_a_history_trimmed_by_the_store_starts_at_a_user_message():
    # The store dropped the user message and the assistant call: the replies are orphans.
    items = [tool("c1"), tool("c2"), assistant("so"), user("next"), assistant("fine")]
    assert request_messages(items) == [user("next"), assistant("fine")]


def test_duplicate_and_stray_replies_are_dropped():
    items = [user(), assistant(None, "c1"), tool("c1"), tool("c1"), tool("zz"), assistant("ok")]
    assert request_messages(items) == [user(), assistant(None, "c1"), tool("c1"), assistant("ok")]


def test_pending_calls_are_those_of_the_last_assistant_message_without_reply():
    assert pending_calls([user(), assistant(None, "a", "b"), tool("b")]) == ["a"]
    assert pending_calls([user(), assistant(None, "a"), tool("a"), user()]) == []
    assert pending_calls([]) == []


def test_history_keeps_the_texts_of_users_and_assistant():
    items = [user("q"), assistant(None, "c1"), tool("c1"), assistant("a")]
    assert history_messages(items) == [Message(Role.USER, "q"), Message(Role.ASSISTANT, "a")]


call_ids = st.sampled_from(["c1", "c2", "c3"])
items = st.one_of(
    st.builds(user),
    st.builds(lambda calls: assistant("x", *sorted(set(calls))), st.lists(call_ids, max_size=3)),
    st.builds(tool, call_ids),
)


@given(st.lists(items, max_size=25), st.integers(min_value=0, max_value=25))
def test_any_stored_history_trimmed_anywhere_becomes_a_valid_request(history, dropped):
    assert_valid(request_messages(history[dropped:]))
