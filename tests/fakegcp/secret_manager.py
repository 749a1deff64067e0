"""A loopback fake of Secret Manager's REST API: enough for ``access_secret_version``.

``GET /v1/projects/{p}/secrets/{s}/versions/{v}:access`` answers
``{"name": ..., "payload": {"data": <base64>, "dataCrc32c": ...}}``, or 404 / 403
with Google's JSON error shape. Use it as a context manager; ``endpoint`` is
what ``production_adapters(secret_manager_endpoint=...)`` takes.
"""

from __future__ import annotations

import base64
import re
import time
from typing import Any

import google_crc32c
from typing_extensions import Self

from fakegcp._http import LoopbackServer, Request, google_error

_ACCESS = re.compile(r"/v1/projects/([^/]+)/secrets/([^/]+)/versions/([^/:]+):access")


class FakeSecretManager:
    """Secrets by (project, name), each a list of versions; ``latest`` is the last one."""

    def __init__(self) -> None:
        self._versions: dict[tuple[str, str], list[bytes]] = {}
        self._denied: set[tuple[str, str]] = set()
        self.unavailable = False
        self.corrupt_checksums = False
        self.delay = 0.0  # seconds before each answer, to see who waits
        self._server = LoopbackServer(self._handle)

    @property
    def endpoint(self) -> str:
        return self._server.url

    @property
    def access_count(self) -> int:
        """How many access requests reached the fake (to see the cache at work)."""
        return sum(1 for r in self._server.requests if r.path.split("?")[0].endswith(":access"))

    @property
    def requests(self) -> list[Request]:
        return self._server.requests

    def add_version(self, project: str, name: str, value: str | bytes) -> None:
        """Add a version of secret ``name``; it becomes ``latest``."""
        data = value.encode() if isinstance(value, str) else value
        self._versions.setdefault((project, name), []).append(data)

    def deny(self, project: str, name: str) -> None:
        """Answer 403 for this secret, as IAM does without secretAccessor."""
        self._denied.add((project, name))

    def _handle(self, request: Request) -> tuple[int, dict[str, Any]]:
        time.sleep(self.delay)
        if self.unavailable:
            return 503, google_error(503, "The service is currently unavailable.")
        match = _ACCESS.fullmatch(request.path.split("?")[0])
        if request.method != "GET" or match is None:
            return 404, google_error(404, f"no such method: {request.method} {request.path}")
        project, name, version = match.groups()
        resource = f"projects/{project}/secrets/{name}/versions/{version}"
        if (project, name) in self._denied:
            return 403, google_error(
                403, f"Permission 'secretmanager.versions.access' denied for resource '{resource}'"
            )
        versions = self._versions.get((project, name))
        if not versions or not (version == "latest" or version.isdigit()):
            return 404, google_error(404, f"Secret [{resource}] not found or has no versions.")
        index = len(versions) if version == "latest" else int(version)
        if not 1 <= index <= len(versions):
            return 404, google_error(404, f"Secret Version [{resource}] not found.")
        data = versions[index - 1]
        checksum = google_crc32c.value(data) + (1 if self.corrupt_checksums else 0)
        return 200, {
            "name": f"projects/{project}/secrets/{name}/versions/{index}",
            "payload": {
                "data": base64.b64encode(data).decode(),
                "dataCrc32c": str(checksum),
            },
        }

    def __enter__(self) -> Self:
        self._server.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.__exit__(*exc)
