"""Production adapters: profiles in a Cloud Storage bucket, secrets in Secret Manager.

Credentials come from Application Default Credentials, as the Google clients
find them (``GOOGLE_APPLICATION_CREDENTIALS``, the metadata server on Cloud
Run). ``STORAGE_EMULATOR_HOST`` is honoured by the storage client itself.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from assistant_service.adapters.config.gcs import GcsConfigRepository
from assistant_service.adapters.gcp_errors import VENDOR_ERRORS, describe
from assistant_service.adapters.secrets.secret_manager import SecretManagerSecretRepository
from assistant_service.domain.errors import ConfigurationError

__all__ = ["gcs_config_repository", "production_adapters", "secret_manager_repository"]


def gcs_config_repository(
    *, bucket_id: str, project_id: str | None = None, ttl: float = 60.0
) -> GcsConfigRepository:
    """A bucket's profiles, through a storage client built from the environment.

    Raises ``ConfigurationError`` when no credentials can be found.
    """
    from google.cloud.storage import Client  # noqa: PLC0415 - only production needs the extra

    if not bucket_id:
        raise ConfigurationError("BUCKET_ID is required to read profiles from Cloud Storage")
    try:
        client = Client(project=project_id)
    except VENDOR_ERRORS as e:
        raise ConfigurationError(
            f"cannot create the Cloud Storage client: {describe(e)}; set "
            "GOOGLE_APPLICATION_CREDENTIALS or run with a service account"
        ) from e
    return GcsConfigRepository(client=client, bucket_id=bucket_id, ttl=ttl)


def secret_manager_repository(
    *, project_id: str, endpoint: str | None = None, ttl: float = 300.0
) -> SecretManagerSecretRepository:
    """Secrets of ``project_id`` through a Secret Manager client (REST transport).

    ``endpoint`` overrides the API endpoint, e.g. a regional one
    (``https://secretmanager.europe-west1.rep.googleapis.com``) or a local fake
    (``http://127.0.0.1:8086``). Over plain ``http://`` no credentials are sent,
    as the storage client does for its emulator: a token must never travel in
    clear text. Raises ``ConfigurationError`` for a bad endpoint or no credentials.
    """
    from google.auth.credentials import AnonymousCredentials  # noqa: PLC0415
    from google.cloud import secretmanager  # noqa: PLC0415

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
    return SecretManagerSecretRepository(client=client, project_id=project_id, ttl=ttl)


def production_adapters(  # noqa: PLR0913 - the settings it needs, all keyword-only
    *,
    project_id: str,
    bucket_id: str,
    secret_name: str,
    secret_manager_endpoint: str | None = None,
    config_ttl: float,
    secret_ttl: float,
) -> tuple[GcsConfigRepository, SecretManagerSecretRepository]:
    """The config and secret repositories of a production deployment.

    ``secret_name`` is checked here only for presence: the composition root
    reads it (``await secrets.get(secret_name)``) at start-up and in readiness,
    where a missing secret or a denied permission is reported by name. Both
    repositories have a ``close()`` that the composition root must call on
    shut-down. Raises ``ConfigurationError`` naming what is missing or wrong.
    """
    missing = [
        name
        for name, value in (
            ("PROJECT_ID", project_id),
            ("BUCKET_ID", bucket_id),
            ("the secret name", secret_name),
        )
        if not value
    ]
    if missing:
        raise ConfigurationError(f"production needs {', '.join(missing)}")
    configs = gcs_config_repository(bucket_id=bucket_id, project_id=project_id, ttl=config_ttl)
    try:
        secrets = secret_manager_repository(
            project_id=project_id, endpoint=secret_manager_endpoint, ttl=secret_ttl
        )
    except BaseException:
        configs.close()
        raise
    return configs, secrets
