"""Fixtures shared by every test directory, and the ``servers`` mark.

The ``servers`` mark: tests that start real servers (redis-server, the Firestore
emulator, gcp-storage-emulator, Hypercorn, the CLI as a process) run on one
Python only (tox's py312); the rest runs on every Python. It is applied here,
at collection, so a new test gets it without asking when it

- lives in tests/e2e/, or
- requests a fixture named in ``support.servers.SERVER_FIXTURES`` (as an
  argument, or through another fixture's arguments).

A test that reaches a server another way carries the mark itself: a fixture
parametrized over backends that calls ``request.getfixturevalue`` marks its
server params (``pytest.param("redis", marks=pytest.mark.servers)``, see
support/state_backends.py); a test that starts a server by hand or runs a
script that does sets ``pytestmark = pytest.mark.servers``. Starting
redis-server, the Firestore emulator or gcp-storage-emulator from a test
without the mark fails it, so a forgotten mark shows on every Python.
"""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path

import pytest

from support import servers

# The fixtures users get from the package; tested here as users use them.
pytest_plugins = ["assistant_service.testing"]

E2E = Path(__file__).parent / "e2e"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        fixtures = getattr(item, "fixturenames", ())
        if item.path.is_relative_to(E2E) or servers.SERVER_FIXTURES.intersection(fixtures):
            item.add_marker(pytest.mark.servers)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, object, object]:
    # Lets support.servers refuse to start a server for a test without the mark.
    servers.running_test = (item.nodeid, item.get_closest_marker("servers") is not None)
    try:
        return (yield)
    finally:
        servers.running_test = None


@pytest.fixture
def anyio_backend() -> str:
    # Quart and Hypercorn run on asyncio; the domain is tested on the same loop.
    return "asyncio"
