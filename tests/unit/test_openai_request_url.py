"""Request URLs built once for the SDK: the same URL the SDK would join itself."""

from __future__ import annotations

import openai
import pytest

from assistant_service.adapters.llm.openai._client import _request_url


@pytest.mark.parametrize(
    "base_url",
    [
        "http://127.0.0.1:9/v1",
        "http://127.0.0.1:9/v1/",
        "https://api.openai.com/v1",
        "https://gateway.example/team/openai/v1",
        "http://[::1]:8080/",
    ],
)
@pytest.mark.parametrize("path", ["/chat/completions", "/responses", "conversations"])
def test_the_url_is_the_one_the_sdk_would_join(base_url, path):
    client = openai.AsyncOpenAI(api_key="sk-test", base_url=base_url)
    url = _request_url(client, path)
    assert url.startswith(("http://", "https://"))
    assert url == str(client._prepare_url(path))  # the SDK's own join


def test_a_base_url_with_a_query_and_a_subclass_keep_the_sdks_own_join():
    with_query = openai.AsyncOpenAI(api_key="sk-test", base_url="http://h/v1?tenant=a")
    assert _request_url(with_query, "/responses") == "/responses"
    azure = openai.AsyncAzureOpenAI(
        api_key="sk-test", azure_endpoint="https://x.openai.azure.com", api_version="2024-10-21"
    )
    assert _request_url(azure, "/chat/completions") == "/chat/completions"
