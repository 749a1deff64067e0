"""Assistant profiles as JSON objects in a Cloud Storage bucket: ``assistants/<id>.json``.

Reads are cached for ``ttl`` seconds so a request does not reach Cloud Storage
every time; ``put`` updates the cache. The client's blocking calls run in
worker threads. Vendor errors become ours:

- a missing object: ``NotFoundError``; a missing bucket: ``ConfigurationError``;
- permission or credential problems: ``ConfigurationError`` saying what to grant;
- network failures, rate limits, 5xx: ``UpstreamUnavailableError``;
- an invalid profile: ``ConfigurationError`` naming ``gs://bucket/object`` and the field.
"""

from __future__ import annotations

import builtins
import contextlib
import time
from collections.abc import Iterator
from typing import Any

import anyio.to_thread
import attrs
from google.cloud.storage import Client
from google.cloud.storage.retry import DEFAULT_RETRY

from assistant_service.adapters.cache import Clock, TtlCache
from assistant_service.adapters.config.codec import (
    is_valid_assistant_id,
    profile_from_json,
    profile_to_json,
)
from assistant_service.adapters.gcp_errors import (
    VENDOR_ERRORS,
    Failure,
    classify,
    describe,
    release,
)
from assistant_service.domain.errors import (
    ConfigurationError,
    NotFoundError,
    UpstreamError,
    UpstreamUnavailableError,
)
from assistant_service.domain.models import AssistantProfile

PREFIX = "assistants/"
SUFFIX = ".json"
# Bounds a listing: a bucket holding more profiles than this is a misconfiguration.
MAX_PROFILES = 1000


@attrs.define
class GcsConfigRepository:
    """Profiles in ``bucket_id``, read through ``client`` (a ``google.cloud.storage.Client``).

    ``timeout`` bounds each HTTP request, ``retry_timeout`` all retries of one
    operation. Call :meth:`close` when done; it closes the client.
    """

    client: Client = attrs.field(repr=False)
    bucket_id: str
    ttl: float = 60.0
    timeout: float = 10.0
    retry_timeout: float = 30.0
    clock: Clock = attrs.field(default=time.monotonic, repr=False)
    _profiles: TtlCache[str, AssistantProfile] = attrs.field(init=False, repr=False)
    _missing: TtlCache[str, str] = attrs.field(init=False, repr=False)
    _listing: TtlCache[None, builtins.list[AssistantProfile]] = attrs.field(init=False, repr=False)

    @classmethod
    def from_environment(
        cls, *, bucket_id: str, project_id: str | None = None, ttl: float = 60.0
    ) -> GcsConfigRepository:
        """A bucket's profiles, through a storage client built from the environment.

        Credentials come from Application Default Credentials
        (``GOOGLE_APPLICATION_CREDENTIALS``, the metadata server on Cloud Run);
        ``STORAGE_EMULATOR_HOST`` is honoured by the client itself. Raises
        ``ConfigurationError`` when no bucket is named or no credentials can be found.
        """
        if not bucket_id:
            raise ConfigurationError("BUCKET_ID is required to read profiles from Cloud Storage")
        try:
            client = Client(project=project_id)
        except VENDOR_ERRORS as e:
            raise ConfigurationError(
                f"cannot create the Cloud Storage client: {describe(e)}; set "
                "GOOGLE_APPLICATION_CREDENTIALS or run with a service account"
            ) from e
        return cls(client=client, bucket_id=bucket_id, ttl=ttl)

    def __attrs_post_init__(self) -> None:
        _stop_bucket_metadata_threads(self.client)
        self._profiles = TtlCache(self.ttl, clock=self.clock)
        self._missing = TtlCache(self.ttl, clock=self.clock)
        self._listing = TtlCache(self.ttl, max_entries=1, clock=self.clock)

    async def get(self, assistant_id: str) -> AssistantProfile:
        if not is_valid_assistant_id(assistant_id):
            raise NotFoundError("assistant", assistant_id)
        return await self._profiles.get_or_load(assistant_id, lambda: self._load(assistant_id))

    async def _load(self, assistant_id: str) -> AssistantProfile:
        # Missing ids are remembered too, so unknown ids do not each reach the bucket.
        if self._missing.get(assistant_id) is not None:
            raise NotFoundError("assistant", assistant_id)
        try:
            return await anyio.to_thread.run_sync(self._read, assistant_id)
        except NotFoundError:
            self._missing.set(assistant_id, assistant_id)
            raise

    async def list(self) -> list[AssistantProfile]:
        return list(await self._listing.get_or_load(None, self._load_all))

    async def _load_all(self) -> builtins.list[AssistantProfile]:
        profiles = await anyio.to_thread.run_sync(self._read_all)
        for profile in profiles:
            self._profiles.set(profile.id, profile)
        return profiles

    async def put(self, profile: AssistantProfile) -> None:
        if not is_valid_assistant_id(profile.id):
            raise ConfigurationError(f"cannot store a profile with id {profile.id!r}")
        await anyio.to_thread.run_sync(self._write, profile)
        self._profiles.set(profile.id, profile)
        self._missing.discard(profile.id)
        self._listing.clear()

    def close(self) -> None:
        """Close the storage client and its connections."""
        self.client.close()

    def url(self, assistant_id: str) -> str:
        """``gs://bucket/assistants/<id>.json``: where the profile lives."""
        return f"gs://{self.bucket_id}/{_object_name(assistant_id)}"

    def _read(self, assistant_id: str) -> AssistantProfile:
        url = self.url(assistant_id)
        with self._translated(url, missing=assistant_id):
            blob = self.client.bucket(self.bucket_id).blob(_object_name(assistant_id))
            data = blob.download_as_bytes(**self._options())
        return _checked(profile_from_json(data, url), assistant_id, url)

    def _read_all(self) -> builtins.list[AssistantProfile]:
        where = f"gs://{self.bucket_id}/{PREFIX}"
        profiles = []
        with self._translated(where):
            # The delimiter keeps "folders" under the prefix out of the listing.
            blobs = self.client.list_blobs(
                self.bucket_id,
                prefix=PREFIX,
                delimiter="/",
                max_results=MAX_PROFILES + 1,
                **self._options(),
            )
            found = [b for b in blobs if b.name.endswith(SUFFIX)]
            if len(found) > MAX_PROFILES:
                raise ConfigurationError(f"{where}: more than {MAX_PROFILES} profiles")
            for blob in found:
                assistant_id = blob.name[len(PREFIX) : -len(SUFFIX)]
                if not is_valid_assistant_id(assistant_id):
                    continue
                url = self.url(assistant_id)
                data = blob.download_as_bytes(**self._options())
                profiles.append(_checked(profile_from_json(data, url), assistant_id, url))
        return sorted(profiles, key=lambda p: p.id)

    def _write(self, profile: AssistantProfile) -> None:
        with self._translated(self.url(profile.id), writing=True):
            blob = self.client.bucket(self.bucket_id).blob(_object_name(profile.id))
            blob.upload_from_string(
                profile_to_json(profile), content_type="application/json", **self._options()
            )

    def _options(self) -> dict[str, Any]:
        return {"timeout": self.timeout, "retry": DEFAULT_RETRY.with_timeout(self.retry_timeout)}

    @contextlib.contextmanager
    def _translated(
        self, where: str, *, missing: str | None = None, writing: bool = False
    ) -> Iterator[None]:
        try:
            yield
        except VENDOR_ERRORS as e:
            release(e)
            failure = classify(e)
            if failure is Failure.NOT_FOUND and missing is not None:
                raise NotFoundError("assistant", missing) from None
            raise _error(failure, where, self.bucket_id, describe(e), writing) from e


def _stop_bucket_metadata_threads(client: Client) -> None:
    # google-cloud-storage 3.x starts a daemon thread per bucket on the first blob
    # call to fetch bucket metadata for its tracing attributes. That thread calls
    # buckets.get (a permission objectViewer lacks) and can still be using the
    # connection pool after close(). We record no traces, so switch it off for
    # our client; DISABLE_GCS_PYTHON_CLIENT_OTEL_BUCKET_METADATA does the same
    # process-wide. The attribute is private, hence the guard.
    if getattr(client, "_bucket_metadata_cache", None) is not None:
        client._bucket_metadata_cache = None  # noqa: SLF001


def _object_name(assistant_id: str) -> str:
    return f"{PREFIX}{assistant_id}{SUFFIX}"


def _checked(profile: AssistantProfile, assistant_id: str, url: str) -> AssistantProfile:
    if profile.id != assistant_id:
        raise ConfigurationError(
            f"{url}: id: {profile.id!r} does not match the object name {assistant_id!r}"
        )
    return profile


def _error(failure: Failure, where: str, bucket: str, detail: str, writing: bool) -> Exception:
    if failure is Failure.NOT_FOUND:
        return ConfigurationError(f"{where}: bucket {bucket!r} not found ({detail})")
    if failure is Failure.PERMISSION:
        role = "roles/storage.objectUser" if writing else "roles/storage.objectViewer"
        return ConfigurationError(
            f"{where}: permission denied ({detail}); grant the service account {role} "
            f"on bucket {bucket!r}"
        )
    if failure is Failure.CREDENTIALS:
        return ConfigurationError(
            f"{where}: Google credentials missing or rejected ({detail}); check "
            "GOOGLE_APPLICATION_CREDENTIALS or the service account"
        )
    if failure is Failure.UNAVAILABLE:
        return UpstreamUnavailableError(f"{where}: Cloud Storage unavailable ({detail})")
    return UpstreamError(f"{where}: Cloud Storage request failed ({detail})")
