"""Secrets in memory and from environment variables."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

import attrs

from assistant_service.domain.errors import NotFoundError
from assistant_service.domain.secrets import Secret


def _copy(values: Mapping[str, str]) -> dict[str, str]:
    return dict(values)


@attrs.define(repr=False)
class InMemorySecretRepository:
    """Secrets in a dict; its repr shows the names only."""

    _values: dict[str, str] = attrs.field(factory=dict, converter=_copy, alias="values")

    async def get(self, name: str) -> Secret:
        try:
            return Secret(name, self._values[name])
        except KeyError:
            raise NotFoundError("secret", name) from None

    def __repr__(self) -> str:
        return f"InMemorySecretRepository(names={sorted(self._values)!r})"


def _env_name(name: str) -> str:
    # "openai-api-key" -> "OPENAI_API_KEY", the usual spelling of a variable.
    return re.sub(r"[^A-Za-z0-9]", "_", name).upper()


@attrs.define
class EnvironmentSecretRepository:
    """Secrets from environment variables: ``openai-api-key`` is read from ``OPENAI_API_KEY``.

    An empty variable counts as missing.
    """

    environ: Mapping[str, str] = attrs.field(factory=lambda: os.environ, repr=False)
    prefix: str = ""

    async def get(self, name: str) -> Secret:
        value = self.environ.get(self.prefix + _env_name(name), "")
        if not value:
            raise NotFoundError("secret", name)
        return Secret(name, value)
