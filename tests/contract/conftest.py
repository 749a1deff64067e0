"""Fixtures of the contract suites: the state-store backends, one at a time.

The server fixtures are imported so that this directory can use them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from support.servers import firestore_emulator, redis_server
from support.state_backends import STATE_BACKENDS, StateBackend, state_backend_opener

__all__ = ["firestore_emulator", "redis_server"]  # session fixtures, shared with this directory


@pytest.fixture(params=STATE_BACKENDS)
async def state_backend(request) -> AsyncIterator[StateBackend]:
    backend = StateBackend(request.param, state_backend_opener(request.param, request))
    try:
        yield backend
    finally:
        await backend.aclose()
