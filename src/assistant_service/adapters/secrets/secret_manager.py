"""Secrets from Google Cloud Secret Manager: ``projects/<project>/secrets/<name>/versions/latest``.

Values are cached for ``ttl`` seconds, so a rotated secret is picked up once
the TTL passes. The client's blocking calls run in worker threads. Errors name
the secret, never its value:

- an unknown secret (or one without an enabled version): ``NotFoundError``;
- permission or credential problems: ``ConfigurationError`` saying what to grant;
- network failures, rate limits, 5xx: ``UpstreamUnavailableError``.
"""

from __future__ import annotations

import logging
import re
import time
from urllib.parse import urlsplit

import anyio.to_thread
import attrs
import google_crc32c
import requests
from google.api_core import exceptions as api_exceptions
from google.api_core import retry as api_retry
from google.auth.credentials import AnonymousCredentials
from google.cloud import secretmanager

from assistant_service.adapters.cache import Clock, TtlCache
from assistant_service.adapters.gcp_errors import VENDOR_ERRORS, Failure, classify, describe
from assistant_service.domain.errors import (
    ConfigurationError,
    NotFoundError,
    UpstreamError,
    UpstreamUnavailableError,
)
from assistant_service.domain.secrets import Secret

# Secret Manager's own rule for secret ids.
_SECRET_NAME = re.compile(r"[A-Za-z0-9_-]{1,255}")

_RETRYABLE = api_retry.if_exception_type(
    api_exceptions.ServiceUnavailable,
    api_exceptions.ResourceExhausted,
    api_exceptions.InternalServerError,
    requests.ConnectionError,
)


# The REST transport's debug log of an AccessSecretVersion *response* is built to
# carry the payload (today it fails to serialise it and logs null; a fix upstream
# would log the secret). Drop that one record, whatever the logging setup.
TRANSPORT_LOGGER = "google.cloud.secretmanager_v1.services.secret_manager_service.transports.rest"


class _NoSecretResponses(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        carries_payload = "httpResponse" in record.__dict__
        return not (carries_payload and getattr(record, "rpcName", "") == "AccessSecretVersion")


_FILTER = _NoSecretResponses()
if not any(isinstance(f, _NoSecretResponses) for f in logging.getLogger(TRANSPORT_LOGGER).filters):
    logging.getLogger(TRANSPORT_LOGGER).addFilter(_FILTER)


@attrs.define(repr=False)
class SecretManagerSecretRepository:
    """Secrets of ``project_id`` read through ``client`` (a ``SecretManagerServiceClient``).

    ``timeout`` bounds each request, ``retry_timeout`` all retries of one read.
    Call :meth:`close` when done; it closes the client's transport.
    """

    client: secretmanager.SecretManagerServiceClient
    project_id: str
    ttl: float = 300.0
    timeout: float = 10.0
    retry_timeout: float = 30.0
    clock: Clock = time.monotonic
    _cache: TtlCache[str, Secret] = attrs.field(init=False)

    @classmethod
    def from_environment(
        cls, *, project_id: str, endpoint: str | None = None, ttl: float = 300.0
    ) -> SecretManagerSecretRepository:
        """Secrets of ``project_id`` through a Secret Manager client (REST transport).

        Credentials come from Application Default Credentials. ``endpoint``
        overrides the API endpoint, e.g. a regional one
        (``https://secretmanager.europe-west1.rep.googleapis.com``) or a local fake
        (``http://127.0.0.1:8086``). Over plain ``http://`` no credentials are sent,
        as the storage client does for its emulator: a token must never travel in
        clear text. Raises ``ConfigurationError`` for a bad endpoint or no credentials.
        """
        if not project_id:
            raise ConfigurationError("PROJECT_ID is required to read secrets from Secret Manager")
        options = {}
        credentials = None
        if endpoint:
            parts = urlsplit(endpoint if "://" in endpoint else f"https://{endpoint}")
            if parts.scheme not in {"http", "https"} or not parts.hostname:
                raise ConfigurationError(
                    f"invalid Secret Manager endpoint {endpoint!r}: use https://host[:port] "
                    "or http://host:port"
                )
            options["api_endpoint"] = f"{parts.scheme}://{parts.netloc}"
            if parts.scheme == "http":
                credentials = AnonymousCredentials()  # type: ignore[no-untyped-call]
        try:
            # REST, not gRPC: the same transport in production and against the local fake.
            client = secretmanager.SecretManagerServiceClient(
                transport="rest", client_options=options or None, credentials=credentials
            )
        except VENDOR_ERRORS as e:
            raise ConfigurationError(
                f"cannot create the Secret Manager client: {describe(e)}; set "
                "GOOGLE_APPLICATION_CREDENTIALS or run with a service account"
            ) from e
        return cls(client=client, project_id=project_id, ttl=ttl)

    def __attrs_post_init__(self) -> None:
        self._cache = TtlCache(self.ttl, clock=self.clock)

    async def get(self, name: str) -> Secret:
        if not _SECRET_NAME.fullmatch(name):
            raise NotFoundError("secret", name)
        return await self._cache.get_or_load(
            name, lambda: anyio.to_thread.run_sync(self._access, name)
        )

    def close(self) -> None:
        """Close the client's transport and its connections."""
        self.client.transport.close()  # type: ignore[no-untyped-call]

    def resource(self, name: str) -> str:
        """The resource name of the latest version of secret ``name``."""
        return f"projects/{self.project_id}/secrets/{name}/versions/latest"

    def _access(self, name: str) -> Secret:
        resource = self.resource(name)
        retry = api_retry.Retry(predicate=_RETRYABLE, initial=0.5, maximum=5.0)
        try:
            response = self.client.access_secret_version(
                name=resource, retry=retry.with_timeout(self.retry_timeout), timeout=self.timeout
            )
        except VENDOR_ERRORS as e:
            raise _error(classify(e), name, resource, describe(e)) from e
        data: bytes = response.payload.data
        if "data_crc32c" in response.payload and (
            google_crc32c.value(data) != response.payload.data_crc32c
        ):
            raise UpstreamError(f"secret {name!r}: checksum mismatch on {resource}")
        try:
            value = data.decode()
        except UnicodeDecodeError:
            raise ConfigurationError(f"secret {name!r} ({resource}) is not UTF-8 text") from None
        # `echo key | gcloud secrets create --data-file=-` stores a trailing newline.
        return Secret(name, value.rstrip("\r\n"))

    def __repr__(self) -> str:
        return f"SecretManagerSecretRepository(project_id={self.project_id!r}, ttl={self.ttl!r})"


def _error(failure: Failure, name: str, resource: str, detail: str) -> Exception:
    if failure is Failure.NOT_FOUND:
        return NotFoundError("secret", name)
    if failure is Failure.PERMISSION:
        return ConfigurationError(
            f"secret {name!r}: permission denied on {resource} ({detail}); grant the service "
            "account roles/secretmanager.secretAccessor on it"
        )
    if failure is Failure.CREDENTIALS:
        return ConfigurationError(
            f"secret {name!r}: Google credentials missing or rejected ({detail}); check "
            "GOOGLE_APPLICATION_CREDENTIALS or the service account"
        )
    if failure is Failure.UNAVAILABLE:
        return UpstreamUnavailableError(f"secret {name!r}: Secret Manager unavailable ({detail})")
    return UpstreamError(f"secret {name!r}: Secret Manager request failed ({detail})")
