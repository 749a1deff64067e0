"""Fixtures shared by every test directory."""

from __future__ import annotations

import pytest

# The fixtures users get from the package; tested here as users use them.
pytest_plugins = ["assistant_service.testing"]


@pytest.fixture
def anyio_backend() -> str:
    # Quart and Hypercorn run on asyncio; the domain is tested on the same loop.
    return "asyncio"
