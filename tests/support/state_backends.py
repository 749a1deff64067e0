"""The state-store adapters as tests open them: in memory, on redis-server, on the Firestore emulator.

A ``StateBackend`` opens stores of one kind: the test's own, another instance
on the same data (as a second instance of the service sees it), or a fresh
store with options of its own. Servers come from the session fixtures of
``support.servers``, requested only when a shared backend is used.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import attrs
import pytest

from assistant_service.adapters.state.memory import InMemoryStateStore
from support.servers import FIRESTORE_PROJECT

# The shared backends reach their servers through request.getfixturevalue, which
# tests/conftest.py cannot see: their params carry the ``servers`` mark themselves.
STATE_BACKENDS = (
    "memory",
    pytest.param("redis", marks=pytest.mark.servers),
    pytest.param("firestore", marks=pytest.mark.servers),
)


@attrs.define
class StateBackend:
    """Opens stores of one kind; ``aclose`` closes every store it opened."""

    name: str
    _open: Callable[[str, dict[str, Any]], Any]
    _namespace: str = attrs.field(factory=lambda: uuid.uuid4().hex[:12])
    _opened: list[Any] = attrs.field(factory=list)
    _store: Any = None

    @property
    def store(self) -> Any:
        """The store of this test (opened on first use)."""
        if self._store is None:
            self._store = self._new(self._namespace, {})
        return self._store

    def instance(self, **options: Any) -> Any:
        """Another store on the same data, as another instance of the service has.

        In memory there is one process: it is the same store.
        """
        if self.name == "memory":
            assert not options, "an in-memory store has one set of options"
            return self.store
        return self._new(self._namespace, options)

    def fresh(self, **options: Any) -> Any:
        """A store on data of its own, built with ``options``."""
        return self._new(uuid.uuid4().hex[:12], options)

    async def aclose(self) -> None:
        for store in self._opened:
            if hasattr(store, "aclose"):
                await store.aclose()

    def _new(self, namespace: str, options: dict[str, Any]) -> Any:
        store = self._open(namespace, options)
        self._opened.append(store)
        return store


def state_backend_opener(name: str, request: pytest.FixtureRequest) -> Callable[..., Any]:
    """How to open a store of kind ``name`` on a namespace (started servers come from fixtures)."""
    if name == "redis":
        from assistant_service.adapters.state.redis import RedisStateStore  # noqa: PLC0415

        server = request.getfixturevalue("redis_server")
        return lambda namespace, options: RedisStateStore.from_url(
            server.url, prefix=f"test-{namespace}:", **options
        )
    if name == "firestore":
        from assistant_service.adapters.state.firestore import FirestoreStateStore  # noqa: PLC0415

        host = request.getfixturevalue("firestore_emulator")
        request.getfixturevalue("monkeypatch").setenv("FIRESTORE_EMULATOR_HOST", host)
        return lambda namespace, options: FirestoreStateStore.from_environment(
            FIRESTORE_PROJECT, prefix=f"test-{namespace}-", **options
        )
    return lambda _namespace, options: InMemoryStateStore(**options)
