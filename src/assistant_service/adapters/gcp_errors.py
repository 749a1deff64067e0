"""Sorting Google client errors (Cloud Storage, Secret Manager) into what a caller can do.

The adapters word the message (which bucket, which secret); this module only
says which kind of failure a vendor exception is.
"""

from __future__ import annotations

import enum
import re

import requests
from google.api_core import exceptions as api_exceptions
from google.auth import exceptions as auth_exceptions

_REQUEST_LINE = re.compile(r"^[A-Z]+ https?://\S+: ")
_MAX_DETAIL = 300


class Failure(enum.Enum):
    """What went wrong, as far as the operator is concerned."""

    NOT_FOUND = "not found"
    PERMISSION = "permission denied"
    CREDENTIALS = "credentials missing or rejected"
    UNAVAILABLE = "unreachable or overloaded"
    OTHER = "failed"


# Statuses worth retrying later: rate limits, overload, timeouts, server faults.
_RETRYABLE = (
    api_exceptions.TooManyRequests,
    api_exceptions.ResourceExhausted,
    api_exceptions.ServerError,
    api_exceptions.DeadlineExceeded,
    api_exceptions.RetryError,
)

VENDOR_ERRORS = (
    api_exceptions.GoogleAPIError,
    auth_exceptions.GoogleAuthError,
    requests.RequestException,
    ConnectionError,
    TimeoutError,
)
"""Exceptions the Google clients raise; anything else is a bug and propagates."""


# In order: the first matching row wins. TransportError comes before the other
# auth errors: it is a GoogleAuthError, but it means the network failed.
_KINDS: tuple[tuple[tuple[type[BaseException], ...], Failure], ...] = (
    ((api_exceptions.NotFound,), Failure.NOT_FOUND),
    ((api_exceptions.Forbidden, api_exceptions.PermissionDenied), Failure.PERMISSION),
    ((api_exceptions.Unauthorized, api_exceptions.Unauthenticated), Failure.CREDENTIALS),
    ((auth_exceptions.TransportError,), Failure.UNAVAILABLE),
    ((auth_exceptions.GoogleAuthError,), Failure.CREDENTIALS),
    (
        (*_RETRYABLE, requests.RequestException, ConnectionError, TimeoutError),
        Failure.UNAVAILABLE,
    ),
)


def classify(error: BaseException) -> Failure:
    """Which kind of failure ``error`` (one of ``VENDOR_ERRORS``) is."""
    for types, failure in _KINDS:
        if isinstance(error, types):
            return failure
    return Failure.OTHER


def release(error: BaseException) -> None:
    """Close the HTTP response an error carries, if any.

    The storage client downloads with ``stream=True``; on an error status it
    raises with the response unread and its connection checked out, so closing
    the client would leave that socket open.
    """
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        close = getattr(getattr(current, "response", None), "close", None)
        if callable(close):
            close()
        current = current.__cause__ or current.__context__


def describe(error: BaseException) -> str:
    """A one-line description of ``error`` without the request's details."""
    if isinstance(error, api_exceptions.RetryError) and error.cause is not None:
        return f"gave up retrying: {describe(error.cause)}"
    if isinstance(error, api_exceptions.GoogleAPICallError):
        # "GET http://host/path?query: what went wrong": the request line is noise here.
        message = _REQUEST_LINE.sub("", error.message or "")
        return _bounded(f"{error.code} {message}".strip())
    return _bounded(f"{type(error).__name__}: {error}")


def _bounded(text: str) -> str:
    return text if len(text) <= _MAX_DETAIL else text[: _MAX_DETAIL - 3] + "..."
