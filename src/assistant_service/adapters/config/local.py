"""Assistant profiles as JSON files in a directory: ``<directory>/<assistant_id>.json``.

For development and for the CLI's ``--to local:<dir>``. Writes are atomic (a
temporary file in the same directory, then a rename), so a reader never sees
half a profile.
"""

from __future__ import annotations

import builtins
import os
import tempfile
from pathlib import Path

import anyio.to_thread
import attrs

from assistant_service.adapters.config.codec import (
    MAX_PROFILE_BYTES,
    is_valid_assistant_id,
    profile_from_json,
    profile_to_json,
)
from assistant_service.domain.errors import ConfigurationError, NotFoundError
from assistant_service.domain.models import AssistantProfile

SUFFIX = ".json"


@attrs.define
class LocalDirectoryConfigRepository:
    """Profiles in ``directory``; ``put`` creates the directory when needed.

    ``get`` raises ``NotFoundError`` for an unknown (or impossible) id and
    ``ConfigurationError`` naming the file and field for an invalid profile;
    ``list`` raises ``ConfigurationError`` if ``directory`` is missing or any file is invalid.
    """

    directory: Path = attrs.field(converter=Path)

    async def get(self, assistant_id: str) -> AssistantProfile:
        if not is_valid_assistant_id(assistant_id):
            raise NotFoundError("assistant", assistant_id)
        return await anyio.to_thread.run_sync(self._read, assistant_id)

    async def list(self) -> list[AssistantProfile]:
        return await anyio.to_thread.run_sync(self._read_all)

    async def put(self, profile: AssistantProfile) -> None:
        if not is_valid_assistant_id(profile.id):
            raise ConfigurationError(f"cannot store a profile with id {profile.id!r}")
        await anyio.to_thread.run_sync(self._write, profile)

    def _path(self, assistant_id: str) -> Path:
        return self.directory / f"{assistant_id}{SUFFIX}"

    def _read(self, assistant_id: str) -> AssistantProfile:
        path = self._path(assistant_id)
        try:
            with path.open("rb") as file:
                data = file.read(MAX_PROFILE_BYTES + 1)
        except FileNotFoundError:
            raise NotFoundError("assistant", assistant_id) from None
        except OSError as e:
            raise ConfigurationError(f"{path}: cannot read: {e.strerror or e}") from None
        profile = profile_from_json(data, str(path))
        if profile.id != assistant_id:
            raise ConfigurationError(
                f"{path}: id: {profile.id!r} does not match the file name {assistant_id!r}"
            )
        return profile

    def _read_all(self) -> builtins.list[AssistantProfile]:
        try:
            paths = sorted(self.directory.glob(f"*{SUFFIX}"))
        except OSError as e:  # pragma: no cover - glob swallows most errors itself
            raise ConfigurationError(f"{self.directory}: cannot list: {e}") from None
        if not self.directory.is_dir():
            raise ConfigurationError(f"{self.directory}: no such directory")
        ids = [p.name[: -len(SUFFIX)] for p in paths]
        return [self._read(i) for i in ids if is_valid_assistant_id(i)]

    def _write(self, profile: AssistantProfile) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        data = profile_to_json(profile).encode()
        # Same directory, so the rename stays on one file system and is atomic.
        fd, temporary = tempfile.mkstemp(
            dir=self.directory, prefix=f".{profile.id}.", suffix=".tmp"
        )
        try:
            # mkstemp makes the file private; a profile is configuration, not a secret.
            os.fchmod(fd, 0o644)
            with os.fdopen(fd, "wb") as file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
            Path(temporary).replace(self._path(profile.id))
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
