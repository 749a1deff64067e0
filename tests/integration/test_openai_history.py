"""``GET /threads/<thread_id>/messages`` on every OpenAI backend, through the real SDK.

The app runs in-process (Quart's test client); the adapters talk to the loopback
fake OpenAI server, so each backend lists its history its own way: the chat and
Responses-local backends from the service's store, Responses-conversations from
``/v1/conversations/{id}/items``, Assistants from ``/v1/threads/{id}/messages``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from assistant_service.adapters.config.memory import InMemoryConfigRepository
from assistant_service.adapters.llm.openai.assistants._model import OpenAIAssistantsModel
from assistant_service.adapters.llm.openai.chat._model import OpenAIChatModel
from assistant_service.adapters.llm.openai.responses._model import OpenAIResponsesModel
from assistant_service.adapters.secrets.memory import InMemorySecretRepository
from assistant_service.adapters.state.memory import InMemoryStateStore
from assistant_service.adapters.tools import FunctionToolRegistry
from assistant_service.application.service import AssistantService
from assistant_service.domain.models import AssistantProfile
from assistant_service.entrypoints.http.app import create_app
from assistant_service.entrypoints.http.services import Services
from assistant_service.entrypoints.settings import LLMBackend, Settings
from fakeopenai import turns as t
from fakeopenai.assistants_state import reply as assistants_reply
from fakeopenai.chat import chat_reply

pytestmark = pytest.mark.anyio

# remote_id is read by the Assistants backend only.
PROFILE = AssistantProfile(id="helper", model="gpt-test", remote_id="asst_remote")
BACKENDS = ["chat", "responses-conversations", "responses-local", "assistants"]
# Where each backend reads its history upstream; the others keep it themselves.
LISTED_FROM = {"responses-conversations": "conversations.items.list", "assistants": "messages.list"}
TURNS = [("hi", "Hello!"), ("weather?", "Sunny.")]


def backend_model(
    name: str, fake_openai: Any, client: Any, store: InMemoryStateStore
) -> tuple[Any, LLMBackend]:
    """The adapter for ``name``, with the fake scripted to answer ``TURNS``."""
    answers = [answer for _, answer in TURNS]
    if name == "chat":
        fake_openai.extensions["chat"].play(*map(chat_reply, answers))
        return OpenAIChatModel(client=client, store=store), LLMBackend.CHAT
    if name.startswith("responses-"):
        fake_openai.responses.turn(*map(t.text, answers))
        state = name.removeprefix("responses-")
        model = OpenAIResponsesModel(client, state=state, store=store, pending=store)
        return model, LLMBackend.RESPONSES
    fake_openai.extensions["assistants"].create_assistant(
        {"model": "m"}, assistant_id="asst_remote"
    )
    fake_openai.extensions["assistants"].play(*map(assistants_reply, answers))
    return OpenAIAssistantsModel(client=client), LLMBackend.ASSISTANTS


def listings(fake_openai: Any) -> dict[str, int]:
    return {route: len(fake_openai.requests_to(route)) for route in LISTED_FROM.values()}


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def client(backend: str, fake_openai: Any, openai_client: Any) -> AsyncIterator[Any]:
    store = InMemoryStateStore()
    model, llm_backend = backend_model(backend, fake_openai, openai_client, store)
    configs = InMemoryConfigRepository.of(PROFILE)
    assistant = AssistantService(
        model=model,
        state=store,
        configs=configs,
        tools=FunctionToolRegistry(),
        default_assistant_id="helper",
    )
    services = Services(
        assistant=assistant,
        configs=configs,
        secrets=InMemorySecretRepository(values={}),
        settings=Settings(llm_backend=llm_backend),
    )
    app = create_app(services)
    async with app.test_app():
        yield app.test_client()


async def test_after_two_turns_the_history_lists_four_messages_in_order(
    client, backend, fake_openai
):
    thread_id = (await (await client.get("/start")).get_json())["thread_id"]
    for message, answer in TURNS:
        response = await client.post("/chat", json={"thread_id": thread_id, "message": message})
        assert response.status_code == 200, await response.get_data()
        assert (await response.get_json())["responses"] == [answer]

    before = listings(fake_openai)
    whole = await client.get(f"/threads/{thread_id}/messages")
    assert whole.status_code == 200
    read_upstream = {route for route, n in listings(fake_openai).items() if n > before[route]}
    assert read_upstream == ({LISTED_FROM[backend]} if backend in LISTED_FROM else set())
    assert await whole.get_json() == {
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

    first = await (await client.get(f"/threads/{thread_id}/messages?limit=3")).get_json()
    assert [m["text"] for m in first["messages"]] == ["hi", "Hello!", "weather?"]
    assert first["has_more"] is True
    rest = await client.get(f"/threads/{thread_id}/messages?limit=3&cursor={first['next_cursor']}")
    assert (await rest.get_json())["messages"] == [{"role": "assistant", "text": "Sunny."}]


async def test_an_unknown_conversation_is_404(client, backend):
    missing = {"assistants": "thread_missing", "chat": "chat_missing"}.get(backend, "conv_missing")
    response = await client.get(f"/threads/{missing}/messages")
    assert response.status_code == 404, await response.get_data()
    assert (await response.get_json())["error"]["code"] == "not_found"
