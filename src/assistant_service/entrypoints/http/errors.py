"""Errors at the edge: domain errors to HTTP statuses, once, and the JSON error body.

Every error body is ``{"error": {"code", "message", "correlation_id"}}`` (plus
``fields`` for 422 and ``retry_after`` for 429, and 503 when known). A 500 never shows
the exception; the log line has the traceback.

``RunLimitError`` (the model asked for tools more often than its profile
allows) is a 502 ``run_limit_exceeded``: the request was fine and the server
is healthy; the upstream model failed to answer within bounds.
"""

from __future__ import annotations

import re
from typing import Any

import structlog
from quart import Quart, Response
from werkzeug.exceptions import HTTPException

from assistant_service.adapters.correlation import current_correlation_id
from assistant_service.domain.errors import (
    AssistantServiceError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
    RunLimitError,
    StateStoreUnavailableError,
    UpstreamError,
    UpstreamUnavailableError,
)
from assistant_service.entrypoints.http.auth import ForbiddenError, UnauthenticatedError
from assistant_service.entrypoints.http.codec import (
    MalformedRequestError,
    dumps_bytes,
    error_payload,
)
from assistant_service.entrypoints.http.refusals import TooManyRequestsError

log = structlog.get_logger(__name__)


class OverloadedError(UpstreamUnavailableError):
    """This process runs as many runs as it may (HTTP 503, retry shortly)."""

    code = "overloaded"


class PayloadTooLargeError(AssistantServiceError):
    """A body or frame over the configured limit (HTTP 413)."""

    code = "payload_too_large"


class UnavailableError(AssistantServiceError):
    """The service is shutting down or not ready (HTTP 503)."""

    code = "unavailable"


class ShuttingDownError(UnavailableError):
    """The server is shutting down: it takes no new run, and ends those past the graceful timeout."""

    code = "shutting_down"


# Most specific first: the first class the error is an instance of wins.
STATUS_BY_ERROR: tuple[tuple[type[AssistantServiceError], int], ...] = (
    (MalformedRequestError, 400),
    (UnauthenticatedError, 401),
    (ForbiddenError, 403),
    (InvalidInputError, 422),
    (NotFoundError, 404),
    (ConflictError, 409),
    (PayloadTooLargeError, 413),
    (TooManyRequestsError, 429),
    (UpstreamUnavailableError, 503),
    (UnavailableError, 503),
    (RunLimitError, 502),
    (UpstreamError, 502),
)


def status_of(error: AssistantServiceError) -> int:
    for kind, status in STATUS_BY_ERROR:
        if isinstance(error, kind):
            return status
    return 500


def correlation_id() -> str:
    return current_correlation_id() or "unknown"


def error_response(
    status: int, payload: dict[str, Any], retry_after: float | None = None
) -> Response:
    body = {"error": {**payload, "correlation_id": correlation_id()}}
    response = Response(dumps_bytes(body), status=status, content_type="application/json")
    if retry_after is not None:
        # Retry-After takes whole seconds; round up so clients do not come back early.
        response.headers["Retry-After"] = str(max(1, int(-(-retry_after // 1))))
    return response


def response_for(error: AssistantServiceError) -> Response:
    status = status_of(error)
    payload = error_payload(error)
    if isinstance(error, StateStoreUnavailableError):
        # The body says only "unavailable": the details are for the operator.
        log.warning("request.state_store_unavailable", error=error.message)
    if status == 500:
        log.error("request.failed", error_code=error.code, exc_info=error)
        payload = {"code": error.code, "message": "the server could not handle the request"}
    retry_after = (
        error.retry_after
        if isinstance(error, (UpstreamUnavailableError, TooManyRequestsError))
        else None
    )
    response = error_response(status, payload, retry_after)
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="assistant-service"'
    if isinstance(error, TooManyRequestsError) and error.quota is not None:
        response.headers.update(error.quota.headers())
    return response


def _http_code(error: HTTPException) -> str:
    if error.code == 413:
        return PayloadTooLargeError.code
    return re.sub(r"[^a-z0-9]+", "_", (error.name or "error").lower()).strip("_")


def register_error_handlers(app: Quart) -> None:
    """Map every error to its JSON body; Quart finds the most specific handler."""

    @app.errorhandler(AssistantServiceError)
    async def domain_error(error: AssistantServiceError) -> Response:
        return response_for(error)

    @app.errorhandler(HTTPException)
    async def http_error(error: HTTPException) -> Response:
        status = error.code or 500
        message = error.description or error.name
        response = error_response(status, {"code": _http_code(error), "message": message})
        for name, value in error.get_headers():
            if name.lower() != "content-type":  # e.g. Allow on a 405
                response.headers[name] = value
        return response

    @app.errorhandler(Exception)
    async def unexpected_error(error: Exception) -> Response:
        log.error("request.unexpected_error", error_type=type(error).__name__, exc_info=error)
        return error_response(
            500, {"code": "internal_error", "message": "the server could not handle the request"}
        )
