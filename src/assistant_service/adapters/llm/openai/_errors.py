"""Translate the ``openai`` SDK's exceptions into the package's own errors.

::

    openai.APIStatusError 404 (when a resource is named)   -> NotFoundError
    openai.APIStatusError 401, 403 (when key_refused)       -> ConfigurationError
    openai.APIStatusError 429, 503                          -> UpstreamUnavailableError(retry_after)
    openai.APIStatusError, other status                     -> UpstreamError
    openai.APIConnectionError / APITimeoutError             -> UpstreamUnavailableError
    openai.APIResponseValidationError                       -> UpstreamError
    openai.APIError (an error event inside a stream)        -> UpstreamError
    a body that is not JSON (json.JSONDecodeError)          -> UpstreamError
    httpx2 transport / stream errors that escape the SDK    -> UpstreamUnavailableError

Each error says whether the upstream itself failed (``fault``: a 5xx, a timeout,
a lost connection, a reply that cannot be read, an error event mid-stream) or
refused the request (a 4xx, 429 included): the circuit breaker counts faults only.

Messages never carry the API key: the upstream's own message is kept short, and
held secret values (whole, encoded or partly echoed) and anything shaped like a
key are masked.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager

import anyio
import httpx2
import openai

from assistant_service.domain.errors import (
    ConfigurationError,
    NotFoundError,
    UpstreamError,
    UpstreamUnavailableError,
)
from assistant_service.domain.secrets import mask_secrets

_UNAVAILABLE_STATUSES = frozenset({429, 503})
_KEY_REFUSED_STATUSES = frozenset({401, 403})
_FIRST_SERVER_ERROR = 500
_MAX_MESSAGE = 300
_LOST = "could not reach the language model, or the connection was lost"


@contextmanager
def translate_openai_errors(
    not_found: tuple[str, str] | None = None, *, key_refused: str | None = None
) -> Iterator[None]:
    """Raise our errors for the SDK's (and its transport's) inside the block.

    ``not_found`` is ``(kind, identifier)`` of the resource the call names: a 404
    then becomes ``NotFoundError(kind, identifier)``; without it a 404 (an
    unknown model, say) is an ``UpstreamError``. ``key_refused`` names what was
    being done where a 401 or 403 is the operator's to fix (a CLI command): it
    then becomes a ``ConfigurationError`` that says to check the key. The
    originals are chained (``raise ... from``) for the log, never put in the message.
    """
    try:
        yield
    except openai.APIStatusError as error:
        if key_refused is not None and error.status_code in _KEY_REFUSED_STATUSES:
            raise ConfigurationError(
                f"{key_refused}: the server refused the API key ({error.status_code}); "
                "check OPENAI_API_KEY"
            ) from error
        raise status_error(error, not_found) from error
    except (openai.APITimeoutError, httpx2.TimeoutException) as error:
        raise _timed_out(error) from error
    except openai.APIConnectionError as error:
        raise UpstreamUnavailableError(_LOST, fault=True) from error
    except openai.APIResponseValidationError as error:
        raise UpstreamError(
            "the language model sent a response this client cannot read", fault=True
        ) from error
    except openai.APIError as error:
        # An error event inside a stream the server had accepted: it failed midway.
        raise UpstreamError(
            f"the language model failed: {redact(error.message)}", fault=True
        ) from error
    except (httpx2.HTTPError, httpx2.StreamError, anyio.EndOfStream) as error:
        # The SDK wraps transport errors it sees; these are the ones raised
        # while a stream is read or closed outside its wrapper.
        raise UpstreamUnavailableError(
            "the connection to the language model was lost", fault=True
        ) from error
    except openai.OpenAIError as error:
        raise UpstreamError(f"the language model client failed: {type(error).__name__}") from error
    except json.JSONDecodeError as error:
        # The SDK parses a 200 body it was told is JSON and lets the decoder's error out.
        raise UpstreamError(
            "the language model sent a reply that is not JSON", fault=True
        ) from error


def _timed_out(error: BaseException) -> UpstreamUnavailableError:
    if _lost_connection(error):
        return UpstreamUnavailableError(_LOST, fault=True)
    return UpstreamUnavailableError("the language model did not answer in time", fault=True)


def _lost_connection(error: BaseException) -> bool:
    """Whether a "timeout" is really a refused or dropped connection.

    The SDK's aiohttp transport reports every aiohttp connection error (refused,
    reset, closed by the server) as httpx2's ``ConnectTimeout``; its cause, an
    aiohttp error that is no timeout, tells the two apart.
    """
    seen: set[int] = set()
    cause: BaseException | None = error
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if type(cause).__module__.startswith("aiohttp") and not isinstance(
            cause, (TimeoutError, asyncio.TimeoutError)
        ):
            return True
        cause = cause.__cause__ or cause.__context__
    return False


def status_error(
    error: openai.APIStatusError, not_found: tuple[str, str] | None = None
) -> UpstreamError | NotFoundError:
    """Our error for an HTTP error status from the upstream."""
    status = error.status_code
    if status == 404 and not_found is not None:
        return NotFoundError(*not_found)
    detail = upstream_message(error)
    message = f"the language model answered {status}" + (f": {detail}" if detail else "")
    fault = status >= _FIRST_SERVER_ERROR
    if status in _UNAVAILABLE_STATUSES:
        return UpstreamUnavailableError(
            message, retry_after=retry_after(error.response), fault=fault
        )
    return UpstreamError(message, fault=fault)


def upstream_message(error: openai.APIError) -> str:
    """The upstream's own error message (from the JSON body), short and redacted."""
    body = error.body
    message = body.get("message") if isinstance(body, dict) else None
    return redact(message) if isinstance(message, str) else ""


def redact(text: str) -> str:
    """``text`` cut short, with held secret values and anything key-shaped masked."""
    masked = mask_secrets(text)
    return masked if len(masked) <= _MAX_MESSAGE else masked[:_MAX_MESSAGE] + "..."


def retry_after(response: httpx2.Response | None) -> float | None:
    """Seconds to wait before retrying, from ``retry-after-ms`` or ``Retry-After``.

    ``Retry-After`` may be seconds or an HTTP date. Returns ``None`` when
    absent or unreadable; never a negative or infinite number.
    """
    if response is None:
        return None
    headers = response.headers
    for name, divisor in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) / divisor
        except ValueError:
            if name == "retry-after":
                return _retry_date(value)
            continue
        return max(0.0, seconds) if math.isfinite(seconds) else None
    return None


def _retry_date(value: str) -> float | None:
    try:
        parsed = email.utils.parsedate_tz(value)
        if parsed is None:
            return None
        return max(0.0, float(email.utils.mktime_tz(parsed) - time.time()))
    except (TypeError, ValueError, OverflowError):
        return None
