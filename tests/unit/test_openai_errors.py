"""The translation of the SDK's exceptions, and the helpers every OpenAI adapter shares."""

from __future__ import annotations

import email.utils
import time

import pytest

openai = pytest.importorskip("openai")
httpx2 = pytest.importorskip("httpx2")

import structlog  # noqa: E402

from assistant_service.adapters.correlation import current_correlation_id  # noqa: E402
from assistant_service.adapters.llm.openai._client import (  # noqa: E402
    make_openai_client,
    upstream_headers,
)
from assistant_service.adapters.llm.openai._errors import (  # noqa: E402
    redact,
    retry_after,
    translate_openai_errors,
)
from assistant_service.domain.errors import (  # noqa: E402
    ConfigurationError,
    NotFoundError,
    UpstreamError,
    UpstreamUnavailableError,
)
from assistant_service.domain.secrets import Secret  # noqa: E402

REQUEST = httpx2.Request("POST", "http://127.0.0.1/v1/responses")


def response(status: int, **headers: str) -> httpx2.Response:
    return httpx2.Response(status, headers=headers, request=REQUEST)


def status_error(status: int, message: str = "nope", **headers: str):
    body = {"message": message, "type": "invalid_request_error"}
    kinds = {404: openai.NotFoundError, 429: openai.RateLimitError}
    kind = kinds.get(status, openai.InternalServerError if status >= 500 else openai.APIStatusError)
    return kind(f"Error code: {status}", response=response(status, **headers), body=body)


def translated(error: BaseException, not_found=None) -> BaseException:
    """What leaves the translation block when ``error`` is raised inside it."""

    def fail() -> None:
        raise error

    try:
        with translate_openai_errors(not_found):
            fail()
    except Exception as escaped:
        return escaped
    raise AssertionError("nothing was raised")


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "7"}, 7.0),
        ({"retry-after": "0.5"}, 0.5),
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),
        ({"retry-after": "soon"}, None),
        ({"retry-after": "-3"}, 0.0),
        ({"retry-after": "inf"}, None),
        ({}, None),
    ],
)
def test_retry_after_reads_seconds_and_milliseconds(headers, expected):
    assert retry_after(response(429, **headers)) == expected


def test_retry_after_reads_an_http_date():
    later = email.utils.formatdate(time.time() + 30, usegmt=True)
    seconds = retry_after(response(503, **{"retry-after": later}))
    assert seconds is not None
    assert 25 <= seconds <= 31


def test_429_and_503_are_unavailable_with_retry_after():
    error = translated(status_error(429, "Rate limit reached", **{"retry-after": "3"}))
    assert isinstance(error, UpstreamUnavailableError)
    assert error.retry_after == 3.0
    assert "429" in error.message
    assert "Rate limit reached" in error.message
    assert isinstance(translated(status_error(503)), UpstreamUnavailableError)


@pytest.mark.parametrize("status", [400, 401, 403, 422, 500, 502])
def test_other_statuses_are_upstream_errors(status):
    error = translated(status_error(status))
    assert type(error) is UpstreamError
    assert str(status) in error.message


def test_404_is_not_found_only_when_a_resource_is_named():
    assert type(translated(status_error(404))) is UpstreamError
    error = translated(status_error(404), not_found=("conversation", "conv_1"))
    assert isinstance(error, NotFoundError)
    assert error.identifier == "conv_1"


def test_connection_failures_and_timeouts_are_unavailable():
    assert isinstance(
        translated(openai.APIConnectionError(request=REQUEST)), UpstreamUnavailableError
    )
    timeout = translated(openai.APITimeoutError(request=REQUEST))
    assert isinstance(timeout, UpstreamUnavailableError)
    assert "in time" in timeout.message
    raw = translated(httpx2.RemoteProtocolError("peer closed connection", request=REQUEST))
    assert isinstance(raw, UpstreamUnavailableError)


def test_an_unreadable_response_and_a_stream_error_are_upstream_errors():
    invalid = openai.APIResponseValidationError(response(200), body={"x": 1})
    assert type(translated(invalid)) is UpstreamError
    streamed = translated(openai.APIError("quota gone", REQUEST, body=None))
    assert type(streamed) is UpstreamError
    assert "quota gone" in streamed.message


def test_our_own_errors_and_others_pass_through():
    own = NotFoundError("conversation", "c")
    assert translated(own) is own
    assert isinstance(translated(KeyError("k")), KeyError)


def test_the_original_error_is_chained_for_the_log():
    original = status_error(500)
    assert translated(original).__cause__ is original


def test_keys_and_tokens_are_masked_in_messages():
    text = "Incorrect API key provided: sk-proj-abcdefghijklmnop. Header: Bearer sk-abc123xyz"
    masked = redact(text)
    assert "abcdefghijklmnop" not in masked
    assert "abc123xyz" not in masked
    assert "sk-proj***" in masked


def test_an_api_key_in_an_upstream_message_never_reaches_ours():
    key = "sk-live-0123456789abcdefghij"
    error = translated(status_error(401, f"Incorrect API key provided: {key}"))
    assert key not in str(error)


def test_long_upstream_messages_are_cut():
    assert len(redact("x" * 5_000)) < 400


def test_upstream_headers_carry_a_usable_correlation_id_only():
    assert upstream_headers() == {}
    with structlog.contextvars.bound_contextvars(correlation_id="req-42"):
        assert upstream_headers() == {"X-Client-Request-Id": "req-42"}
    for unusable in ["", "é-not-ascii", "x" * 129, "line\nbreak", 42]:
        with structlog.contextvars.bound_contextvars(correlation_id=unusable):
            assert current_correlation_id() is None


@pytest.mark.anyio
async def test_the_client_gets_the_timeouts_and_retries_asked_for():
    client = make_openai_client(
        api_key="sk-test",
        base_url="http://127.0.0.1:1/v1",
        timeout=12,
        connect_timeout=2,
        max_retries=4,
    )
    async with client:
        assert client.max_retries == 4
        assert client.timeout.read == 12
        assert client.timeout.connect == 2


@pytest.mark.anyio
async def test_the_client_takes_the_key_as_a_secret():
    client = make_openai_client(api_key=Secret("OPENAI_API_KEY", "sk-from-secret"))
    async with client:
        assert client.api_key == "sk-from-secret"


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_key_is_a_configuration_error_when_the_operator_must_fix_it(status):
    error = status_error(status, "Incorrect API key provided: sk-abcd1234efgh5678")
    try:
        with translate_openai_errors(key_refused="remote assistant for 'weather'"):
            raise error
    except ConfigurationError as escaped:
        assert escaped.message.startswith("remote assistant for 'weather': the server refused")
        assert "OPENAI_API_KEY" in escaped.message
        assert "sk-abcd1234" not in escaped.message
    else:
        raise AssertionError("no ConfigurationError")
    # Without key_refused, the same answer is an upstream failure of a run (502).
    assert type(translated(error)) is UpstreamError
