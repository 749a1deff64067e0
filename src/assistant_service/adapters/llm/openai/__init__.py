"""Language models that speak OpenAI's protocols, through the ``openai`` SDK (the ``openai`` extra).

- :class:`OpenAIResponsesModel`: the Responses API, with state in the Conversations API or here.
- :class:`OpenAIAssistantsModel`: the legacy Assistants API (threads and runs).
- :class:`OpenAIChatModel`: Chat Completions, for any OpenAI-compatible server.

Build one client per process with :func:`make_openai_client` and share it.
"""

try:
    import openai as _openai  # noqa: F401 -- only to say which extra is missing
except ImportError as error:  # pragma: no cover - the core install has no SDK
    raise ImportError(
        "the OpenAI models need the openai extra: pip install 'assistant-service[openai]'"
    ) from error

from assistant_service.adapters.llm.openai._client import (
    OpenAITransport,
    make_openai_client,
)
from assistant_service.adapters.llm.openai.assistants._model import OpenAIAssistantsModel
from assistant_service.adapters.llm.openai.chat._model import OpenAIChatModel
from assistant_service.adapters.llm.openai.responses._model import OpenAIResponsesModel

__all__ = [
    "OpenAIAssistantsModel",
    "OpenAIChatModel",
    "OpenAIResponsesModel",
    "OpenAITransport",
    "make_openai_client",
]
